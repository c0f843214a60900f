"""Privacy: names never kept, old sessions deleted, sessions forgotten on request, no audio.

The name masking runs on the shipped name list (config/names/nl.txt) and on names from
the configuration; the daemon runs in-process on real files (journal, records, reports)
with its clocks under test control, and once as a process that hears a note through
the real microphone path and Vosk model (as in test_run_notes.py).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from support import Recorder, ScriptedListener, leervraag_in_phase_two

from assistant.cli import main
from assistant.command import command
from assistant.config import NAMES_FILE, load_method, load_phrases, load_settings, make_masker, read_names
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import ButtonDown, Heard, ListenerState, Press
from assistant.core.masking import NameMasker, fold
from assistant.core.settings import PrivacySettings, Settings
from assistant.errors import ConfigError
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal

DAY = 24 * 3600.0
NOW = 1_800_000_000.0
"""The daemon's wall clock in these tests (January 2027)."""
SECRET = "de klas van meneer"
"""Words in the kept notes, which must never appear in a log or on the console."""


def shipped(**settings: Any) -> NameMasker:
    """The masker of a default configuration (the shipped list), with these settings."""
    masker = make_masker(PrivacySettings(**settings), "[naam]")
    assert masker is not None
    return masker


# --- masking --------------------------------------------------------------------------


def test_a_name_is_masked_but_a_name_that_is_an_ordinary_word_is_not() -> None:
    masker = shipped()
    assert masker.mask("ik vind dat sanne te laat komt") == "ik vind dat [naam] te laat komt"
    assert masker.mask("ik ben bang dat het misgaat") == "ik ben bang dat het misgaat"
    for sentence in (
        "ik heb hoop dat het lukt",
        "een roos op tafel en een lieve klas",
        "mijn job is zwaar",
        "ik zet een mark bij het antwoord",
        "will je dat nog eens zeggen",
    ):
        assert masker.mask(sentence) == sentence


def test_the_shipped_list_has_hundreds_of_names_and_leaves_out_ordinary_words() -> None:
    names = read_names(NAMES_FILE)
    assert len(names) >= 300
    assert {"ben", "roos", "lieve", "job", "hoop", "mark", "will"}.isdisjoint(fold(n) for n in names)
    header = NAMES_FILE.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "ordinary Dutch words" in header and "participants" in header and "names_file" in header


@pytest.mark.slow
def test_every_shipped_name_that_is_also_a_dutch_word_says_why_it_is_kept() -> None:
    # Debian's wdutch (the OpenTaal list; scripts/setup.sh --test installs it) has
    # ordinary words in lower case and names capitalised.
    words = Path("/usr/share/dict/dutch").read_text(encoding="utf-8").splitlines()
    ordinary = {fold(w) for w in words if w == w.lower()}
    assert "hoop" in ordinary and "sanne" not in ordinary  # the list is what we think it is
    unexplained = []
    for line in NAMES_FILE.read_text(encoding="utf-8").splitlines():
        name, _, comment = line.partition("#")
        name = name.strip()
        if name and " " not in name and "-" not in name and fold(name) in ordinary and not comment.strip():
            unexplained.append(name)
    assert unexplained == [], "also ordinary Dutch words: leave them out, or say on their line why they are kept"


def test_the_group_s_names_are_masked_even_when_they_are_ordinary_words() -> None:
    masker = shipped(participants=("Roos", "Mark", "Jan de Vries"))
    assert masker.mask("ik gaf de roos aan mark") == "ik gaf de [naam] aan [naam]"
    assert masker.mask("jan de vries zei het") == "[naam] zei het"
    assert masker.mask("toen zei mevrouw de vries dat") == "toen zei mevrouw [naam] dat"
    assert masker.mask("de les van vries") == "de les van [naam]"
    assert masker.mask("de les begon") == "de les begon", "a little word of a surname alone is no name"


def test_multi_word_names_case_and_accents() -> None:
    masker = shipped()
    assert masker.mask("anne-marie en anne marie") == "[naam] en [naam]"
    assert masker.mask("ik sprak jan willem") == "ik sprak [naam]"
    decomposed = unicodedata.normalize("NFD", "zoë")
    assert masker.mask(f"Zoë, zoë, ZOË, zoe en {decomposed}") == "[naam], [naam], [naam], [naam] en [naam]"
    assert masker.mask("Sanne's idee") == "[naam]'s idee"


def test_names_are_masked_only_as_whole_words() -> None:
    masker = shipped(participants=("An",))
    assert masker.mask("an gaf het antwoord dan") == "[naam] gaf het antwoord dan"
    assert masker.mask("een plan van an.") == "een plan van [naam]."
    assert masker.mask("daantje en sanneke") == "daantje en sanneke"


def test_the_mask_follows_the_language_or_the_configuration(tmp_path: Path) -> None:
    english = make_masker(PrivacySettings(), load_phrases("en").say("name_mask"))
    assert english is not None and english.mask("i asked sanne") == "i asked [name]"
    own = make_masker(PrivacySettings(mask="***"), "[naam]")
    assert own is not None and own.mask("sanne") == "***"
    assert make_masker(PrivacySettings(mask_names=False), "[naam]") is None


def test_the_recogniser_s_words_are_masked_like_its_text() -> None:
    masker = shipped()
    words = [
        {"word": "ik", "conf": 1.0},
        {"word": "sprak", "conf": 0.9},
        {"word": "jan", "conf": 0.8, "start": 1.0, "end": 1.2},
        {"word": "willem", "conf": 0.4, "start": 1.2, "end": 1.6},
        {"word": "en", "conf": 1.0},
        {"word": "sanne", "conf": 0.7},
    ]
    event = masker.event(Heard(kind="leervraag", text="ik sprak jan willem en sanne", words=words))
    assert isinstance(event, Heard)
    assert event.text == "ik sprak [naam] en [naam]"
    assert event.words == [
        {"word": "ik", "conf": 1.0},
        {"word": "sprak", "conf": 0.9},
        {"word": "[naam]", "conf": 0.4, "start": 1.0, "end": 1.6},
        {"word": "en", "conf": 1.0},
        {"word": "[naam]", "conf": 0.7},
    ]


def test_a_names_file_adds_names_and_a_missing_one_is_one_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    extra = tmp_path / "leerlingen.txt"
    extra.write_text("# pupils of group 8\nkeanu\nmaria-luisa  # two words\n", encoding="utf-8")
    masker = shipped(names_file=str(extra))
    assert masker.mask("keanu en maria luisa en sanne") == "[naam] en [naam] en [naam]"
    with caplog.at_level(logging.ERROR):
        masker = shipped(names_file=str(tmp_path / "missing.txt"), participants=("Keanu",))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "missing.txt" in errors[0] and "not found" in errors[0]
    assert masker.mask("keanu en sanne") == "[naam] en [naam]", "the other names are still masked"


# --- settings -------------------------------------------------------------------------


def test_privacy_settings_default_to_thirty_days_and_masking() -> None:
    privacy = load_settings().privacy
    assert (privacy.retention_days, privacy.mask_names, privacy.participants) == (30, True, ())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("retention_days = 0", "privacy.retention_days: expected a number from 1 to 3650, got 0"),
        ("retention_days = 30.5", "privacy.retention_days: expected a whole number, got 30.5"),
        ("retention_days = '30'", "privacy.retention_days: expected a whole number, got '30'"),
        ("retention_days = 100000", "privacy.retention_days: expected a number from 1 to 3650, got 100000"),
        ("participants = 'Sanne'", "privacy.participants: expected a list of names"),
        ("participants = ['Sanne', 3]", "privacy.participants: expected a list of names"),
        ("mask_names = 'yes'", "privacy.mask_names: expected true or false, got 'yes'"),
    ],
)
def test_a_wrong_privacy_setting_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[privacy]\n{content}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="privacy"):
        load_settings(config)
    assert main(["forget", "--all", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


# --- the daemon: nothing with a name reaches the disk -----------------------------------


def _daemon(data: Path, wall: FakeClock, listener: ScriptedListener | None = None, **privacy: Any) -> Daemon:
    daemon = Daemon(
        Settings(data_dir=str(data), privacy=PrivacySettings(**privacy)),
        load_method("intervisie", "nl"),
        load_phrases("nl"),
        Recorder(),
        Journal(data),
        SessionClock(1.0, monotonic=FakeClock(100.0)),
        wall=wall,
        listener=listener,
    )
    daemon.start_up()
    if listener is not None:
        daemon.step(ListenerState(listener.state))
    return daemon


def _run_session(daemon: Daemon, leervraag: str | None = None) -> None:
    """Start, say the leervraag in phase 2 and keep it, then press on to the end."""
    for _ in range(3 if leervraag is not None else 2):
        daemon.step(ButtonDown())
        daemon.step(Press())
    if leervraag is not None:
        words = [{"word": w, "conf": 0.9} for w in leervraag.split()]
        daemon.step(Heard(kind="leervraag", text=leervraag, words=words))
        daemon.step(Press())  # keep it
        daemon.step(ListenerState("no_microphone"))  # the other notes: none
    while daemon.session_id is not None:
        daemon.step(ButtonDown())
        daemon.step(Press())


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file())


def test_a_name_in_a_note_reaches_neither_the_journal_nor_the_record_nor_the_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    daemon = _daemon(data, FakeClock(NOW), ScriptedListener(), participants=("Roos",))
    for _ in range(3):
        daemon.step(ButtonDown())
        daemon.step(Press())
    said = "hoe reageer ik als sanne en roos de les verstoren"
    daemon.step(Heard(kind="leervraag", text=said, words=[{"word": w, "conf": 0.9} for w in said.split()]))
    masked = "hoe reageer ik als [naam] en [naam] de les verstoren"
    assert daemon.speaker.said[-2] == f"Ik heb genoteerd: {masked}."  # type: ignore[attr-defined]
    on_disk = _all_text(data)
    assert "current.jsonl" in os.listdir(data) and masked in on_disk
    assert "sanne" not in on_disk and "roos" not in on_disk, "the journal never holds the name"
    daemon.step(Press())
    daemon.step(ListenerState("no_microphone"))
    while daemon.session_id is not None:
        daemon.step(ButtonDown())
        daemon.step(Press())
    record = json.loads(next((data / "records").glob("*.json")).read_text(encoding="utf-8"))
    kept = record["captures"]["leervraag"][0]
    assert kept["text"] == masked and kept["accepted"]
    assert [w["word"] for w in kept["words"]] == masked.split()
    everything = _all_text(data)
    assert "[naam]" in (data / "reports" / f"{record['id']}.md").read_text(encoding="utf-8").replace("\\", "")
    assert "sanne" not in everything and "roos" not in everything


def test_with_masking_switched_off_the_note_is_kept_as_heard(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _run_session(_daemon(data, FakeClock(NOW), ScriptedListener(), mask_names=False), "ik vind dat sanne gelijk heeft")
    record = json.loads(next((data / "records").glob("*.json")).read_text(encoding="utf-8"))
    assert record["captures"]["leervraag"][0]["text"] == "ik vind dat sanne gelijk heeft"


# --- retention --------------------------------------------------------------------------


def _session_id(started: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(started))


def _keep(data: Path, session_id: str, record: Any = None, reports: bool = True, mtime: float | None = None) -> list[Path]:
    """Write a kept session's files as the daemon does (0700 folders, 0600 files)."""
    files = []
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in ("records", "reports"):
        (data / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
    if record is not None:
        path = data / "records" / f"{session_id}.json"
        path.write_text(record if isinstance(record, str) else json.dumps(record), encoding="utf-8")
        files.append(path)
    if reports:
        for suffix in (".md", ".json"):
            path = data / "reports" / f"{session_id}{suffix}"
            path.write_text(f"# report\n> {SECRET}\n", encoding="utf-8")
            files.append(path)
    for path in files:
        path.chmod(0o600)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    return files


def _record(started: float) -> dict[str, Any]:
    return {
        "id": _session_id(started),
        "started_wall": started,
        "ended_wall": started + 3000,
        "finished": True,
        "method": "intervisie",
        "language": "nl",
        "captures": {"leervraag": [{"text": SECRET, "accepted": True}]},
    }


def _old_and_new(data: Path) -> tuple[list[str], list[str]]:
    """Kept sessions around the 30-day limit, dated in every way; (expired ids, kept ids)."""
    expired, kept = [], []
    old = NOW - 40 * DAY
    # A record's own start date counts, whatever the file's time says.
    expired.append(_session_id(old))
    _keep(data, expired[-1], _record(old), mtime=NOW)
    recent = NOW - 5 * DAY
    kept.append(_session_id(recent))
    _keep(data, kept[-1], _record(recent), mtime=NOW - 100 * DAY)
    just_inside = NOW - 29.9 * DAY
    kept.append(_session_id(just_inside))
    _keep(data, kept[-1], _record(just_inside))
    # A damaged record and a report whose record is gone: dated by their id.
    expired.append(_session_id(NOW - 31 * DAY))
    _keep(data, expired[-1], "{damaged", mtime=NOW)
    expired.append(_session_id(NOW - 60 * DAY))
    _keep(data, expired[-1], None, mtime=NOW)
    # No date anywhere but the files' own time (an id with a date that does not exist).
    expired.append("20261399-250000")
    _keep(data, "20261399-250000", {"id": "20261399-250000"}, mtime=NOW - 45 * DAY)
    kept.append("20261398-250000")
    _keep(data, "20261398-250000", {"id": "20261398-250000"}, mtime=NOW - 2 * DAY)
    # Files not named like a session are not the assistant's, however old: never touched.
    kept.append("q3-budget")
    _keep(data, "q3-budget", {"id": "q3-budget"}, mtime=NOW - 400 * DAY)
    # What an atomic write cut off by a power cut left behind goes with its session.
    leftover = data / "reports" / f".{expired[0]}.md.x7k2.tmp"
    leftover.write_text(SECRET)
    return expired, kept


def _kept_ids(data: Path) -> set[str]:
    return {p.name.split(".")[0] if not p.name.startswith(".") else p.name for p in data.rglob("*") if p.is_file()}


def test_sessions_older_than_the_retention_period_are_deleted_when_the_daemon_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    expired, kept = _old_and_new(data)
    with caplog.at_level(logging.INFO, logger="assistant"):
        _daemon(data, FakeClock(NOW))
    assert _kept_ids(data) == set(kept)
    deleted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("deleted session")]
    assert sorted(line.split()[2] for line in deleted) == sorted(expired)
    dated = {line.split()[2]: line for line in deleted}
    assert "dated by its record" in dated[expired[0]] and "dated by its id" in dated[expired[1]]
    assert "dated by its file" in dated["20261399-250000"]
    assert time.strftime("%Y-%m-%d", time.localtime(NOW - 40 * DAY)) in dated[expired[0]]
    assert SECRET not in caplog.text, "the log names sessions, never what was said"
    modes = {stat.S_IMODE(p.stat().st_mode) for p in [data / "records", data / "reports"]}
    assert modes == {0o700}


def test_a_shorter_retention_period_deletes_more_after_the_next_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wall = FakeClock(NOW)
    daemon = _daemon(data, wall, retention_days=3)
    three_days_ago = NOW - 3.5 * DAY
    _keep(data, _session_id(three_days_ago), _record(three_days_ago))  # arrives after start-up
    yesterday = NOW - DAY
    _keep(data, _session_id(yesterday), _record(yesterday))
    _run_session(daemon)
    ids = _kept_ids(data)
    assert _session_id(three_days_ago) not in ids
    assert _session_id(yesterday) in ids and _session_id(NOW) in ids, "the new session and yesterday's stay"


# --- forget -------------------------------------------------------------------------------


def _config(tmp_path: Path, data: Path) -> str:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{data}"\n', encoding="utf-8")
    return str(config)


def _sessions(data: Path, *days_ago: float) -> list[str]:
    ids = []
    for days in days_ago:
        started = time.time() - days * DAY
        ids.append(_session_id(started))
        _keep(data, ids[-1], _record(started))
    return ids


def _journal(data: Path, session_id: str) -> Path:
    """A running session's journal, as the daemon starts it."""
    path = data / "current.jsonl"
    path.write_text(json.dumps({"journal": 1, "id": session_id, "wall": time.time()}) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def test_forget_deletes_one_session_and_says_which(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    first, second = _sessions(data, 3, 1)
    assert main(["forget", first, "--config", _config(tmp_path, data)]) == 0
    out = capsys.readouterr().out
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - 3 * DAY))
    assert out == f"Deleted session {first} (started {started}): record, report.\n"
    assert _kept_ids(data) == {second}
    assert main(["report", "--list", "--config", _config(tmp_path, data)]) == 0
    listed = capsys.readouterr().out
    assert second in listed and first not in listed


def test_forget_of_an_unknown_session_is_one_line_and_exit_code_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    (kept,) = _sessions(data, 2)
    assert main(["forget", "20200101-000000", "--config", _config(tmp_path, data)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"intervisie: no session with id '20200101-000000'; '{command('report --list')}' shows the kept sessions\n"
    )
    assert main(["forget", "../records", "--config", _config(tmp_path, data)]) == 1
    assert _kept_ids(data) == {kept}
    assert main(["forget", "--config", _config(tmp_path, data)]) == 2
    assert main(["forget", kept, "--all", "--config", _config(tmp_path, data)]) == 2
    assert "give the id of one session" in capsys.readouterr().err
    assert _kept_ids(data) == {kept}


def test_the_running_session_is_not_forgotten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    kept = _sessions(data, 2)
    running = _session_id(time.time())
    journal = _journal(data, running)
    before = journal.read_bytes()
    assert main(["forget", running, "--config", _config(tmp_path, data)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"session {running} is still running" in err
    assert main(["forget", "--all", "--config", _config(tmp_path, data)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Deleted session {kept[0]} ")
    assert out[1].startswith(f"Session {running} is still running") and len(out) == 2
    assert journal.read_bytes() == before, "the running session can still be resumed"
    assert _kept_ids(data) == {"current"}


def test_forget_all_through_the_installed_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ids = _sessions(data, 40, 12, 0.5)
    command = Path(sys.executable).with_name("intervisie")
    assert command.exists(), "the console script is installed with the package"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    result = subprocess.run(
        [str(command), "forget", "--all", "--config", _config(tmp_path, data)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ids
    assert all(line.endswith("): record, report.") for line in lines)
    assert SECRET not in result.stdout + result.stderr
    assert not [p for p in data.rglob("*") if p.is_file()]
    assert {stat.S_IMODE(p.stat().st_mode) for p in (data, data / "records", data / "reports")} == {0o700}
    again = subprocess.run(
        [str(command), "forget", "--all", "--config", _config(tmp_path, data)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert again.returncode == 0 and again.stdout == f"No sessions are kept in {data}: nothing to delete.\n"


# --- end to end: a note through the microphone keeps no name and no audio --------------


@pytest.mark.slow
def test_a_note_said_into_the_microphone_keeps_no_name_and_no_audio(tmp_path: Path) -> None:
    from support import (
        HANGUL,
        SPOKEN,
        Microphone,
        bare_vosk_with_words,
        no_dither_model,
        spoken_note,
    )
    from support import (
        Daemon as DaemonProcess,
    )

    from assistant.testing import filesound

    sound = filesound.write_asoundrc(tmp_path / "home")
    mic = Microphone(sound.inp)
    model = no_dither_model(tmp_path / "model")
    clip, heard_by_bare_vosk = spoken_note(mic, SPOKEN)
    # What bare Vosk hears in the same samples; one of its words is made a participant's name.
    text, _words = bare_vosk_with_words(model, heard_by_bare_vosk)
    name = max(text.split(), key=len)
    assert len(name) >= 2 and HANGUL.search(name), text
    masked = " ".join("[naam]" if word == name else word for word in text.split())
    data, temp = tmp_path / "data", tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{data}"\nparticipants = 0\n'
        f'[listening]\nmodel = "{model}"\nsilence_seconds = 1.0\nwait_seconds = 3\nmax_seconds = 20\n'
        f'[privacy]\nparticipants = ["{name}"]\n',
        encoding="utf-8",
    )
    daemon = DaemonProcess(tmp_path, "--speed", "6", env={"HOME": str(sound.home), "TMPDIR": str(temp)})
    try:
        leervraag_in_phase_two(daemon, mic, sound.out, clip, timeout=20)
        journal = (data / "current.jsonl").read_text(encoding="utf-8")
        assert masked in journal and name not in journal, "the journal on disk never holds the name"
        daemon.expect("say [note_first_person]")
        daemon.key("")
        daemon.expect("say [note_saved]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 3:")
        for number in (4, 6):  # the kernvraag and the actieplan: nothing said
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number}:")
            daemon.key("")
            daemon.expect("say [note_invite]")
            daemon.expect("say [note_nothing]")
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number + 1}:")
        daemon.key("")
        daemon.expect("say [summary]")
        daemon.expect("report of session")
        daemon.key("q")
        assert daemon.finish(timeout=30) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        mic.close()

    (record_path,) = (data / "records").glob("*.json")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    (item,) = record["captures"]["leervraag"]
    assert item["text"] == masked and item["accepted"]
    assert "[naam]" in [w["word"] for w in item["words"]]
    session = record["id"]
    files = [data, *data.rglob("*")]
    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert modes == {
        ".": 0o700,
        "records": 0o700,
        f"records/{session}.json": 0o600,
        "reports": 0o700,
        f"reports/{session}.md": 0o600,
        f"reports/{session}.json": 0o600,
        f"reports/{session}.html": 0o600,
    }, "only the record and the report, private"
    clip_bytes = len(clip.tobytes())
    for path in (p for p in files if p.is_file()):
        content = path.read_bytes()
        assert name.encode() not in content, f"{path.name} holds the name"
        assert len(content) < clip_bytes / 4, f"{path.name} is as large as audio"
        assert not content.startswith((b"RIFF", b"OggS", b"fLaC", b"ID3")), f"{path.name} is audio"
        if path.suffix == ".json":
            json.loads(content.decode("utf-8"))
        else:
            content.decode("utf-8")
    assert "[naam]" in (data / "reports" / f"{session}.md").read_text(encoding="utf-8").replace("\\", "")
    # (ALSA's PulseAudio probe leaves an empty pulse-* folder there.)
    left = [p for p in temp.rglob("*") if not p.is_dir()]
    assert left == [], "no audio (nor any other file) is left in the temporary folder"
    log = "".join(daemon.log)
    assert name not in log and masked not in log


def test_a_journal_written_before_masking_was_switched_on_is_masked_when_resumed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wall = FakeClock(NOW)
    first = _daemon(data, wall, ScriptedListener(), mask_names=False)
    for _ in range(3):
        first.step(ButtonDown())
        first.step(Press())
    first.step(Heard(kind="leervraag", text="waarom luistert sanne niet", words=[]))
    first.step(Press())
    assert "sanne" in (data / "current.jsonl").read_text(encoding="utf-8")
    wall.advance(60)  # a restart a minute later, now with masking on
    again = _daemon(data, wall, ScriptedListener())
    assert again.session.record()["captures"]["leervraag"][0]["text"] == "waarom luistert [naam] niet"


def test_the_report_of_a_record_kept_before_masking_has_no_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    started = time.time() - DAY
    record = _record(started)
    record["captures"] = {
        "leervraag": [{"text": "hoe help ik sanne", "accepted": True, "words": [{"word": "sanne", "conf": 0.3}]}],
        "ideas": [{"text": "vraag het aan zoë", "accepted": True}],
    }
    _keep(data, record["id"], record, reports=False)
    assert main(["report", record["id"], "--config", _config(tmp_path, data)]) == 0
    markdown = capsys.readouterr().out
    assert "hoe help ik \\[naam\\]" in markdown and "vraag het aan \\[naam\\]" in markdown
    assert main(["report", record["id"], "--json", "--config", _config(tmp_path, data)]) == 0
    report = capsys.readouterr().out
    assert "sanne" not in report.lower() and "zoë" not in report
