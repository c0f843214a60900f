"""The session report: what the group reads afterwards, and the ``intervisie report`` command."""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Recorder

from assistant.cli import main
from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import Captured, Event, LongPress, Press, Tick
from assistant.core.session import Session
from assistant.core.settings import ScheduleSettings, Settings
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal
from assistant.storage.report import build_report, write_report

MIN = 60.0
# 2027-01-15 08:00 UTC, 09:00 in Amsterdam.
WALL = 1_800_000_000.0


@pytest.fixture(autouse=True)
def amsterdam(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is Dutch winter time, so dates and times in the report are known."""
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def words(text: str, unsure: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Per-word confidence as the recogniser gives it: sure, except the words named."""
    unsure = unsure or {}
    return [{"word": w, "conf": unsure.get(w, 0.97)} for w in text.split()]


class Group:
    """A group going through a real session on a clock the test moves."""

    def __init__(self, lang: str = "nl", mode: str = "keep_end", participants: int = 4) -> None:
        self.session = Session(
            load_method("intervisie", lang), load_phrases(lang), schedule=ScheduleSettings(mode=mode), participants=participants
        )
        self.t = 0.0

    def do(self, event: Event) -> None:
        self.session.handle(event, self.t)

    def wait(self, seconds: float) -> None:
        end = self.t + seconds
        while (due := self.session.next_deadline()) is not None and due <= end:
            self.t = max(self.t, due)
            self.do(Tick())
        self.t = end

    def note(self, kind: str, text: str, accepted: bool = True, **extra: Any) -> None:
        self.do(Captured(kind, text, accepted, extra))

    def record(self, session_id: str = "20270115-090000") -> dict[str, Any]:
        return {
            "id": session_id,
            "started_wall": WALL,
            "ended_wall": WALL + self.t,
            **self.session.record(self.t),
        }


def whole_session(lang: str = "nl") -> dict[str, Any]:
    """Fifty-odd minutes: phase 2 runs over, phase 3 is shortened, phase 4 has a pause."""
    g = Group(lang)
    g.do(Press())  # phase 1, a round of four
    for _ in range(4):
        g.wait(75)
        g.do(Press())
    g.do(Press())  # phase 2
    g.wait(3 * MIN)
    g.note("leervraag", "hoe ga ik om met boze ouders", False, attempt=1, words=words("hoe ga ik om met boze ouders"))
    g.wait(1 * MIN)
    text = "hoe reageer ik rustig op boze ouders"
    g.note("leervraag", text, True, attempt=2, words=words(text, {"reageer": 0.31, "rustig": 0.42}), first_person=True)
    g.wait(3 * MIN)
    g.do(Press())  # phase 3, after 7 minutes in phase 2
    g.wait(9 * MIN)
    g.do(Press())  # phase 4
    g.wait(1 * MIN)
    g.do(LongPress())
    g.wait(2 * MIN)
    g.do(LongPress())
    g.wait(2 * MIN)
    g.do(Press())  # phase 5
    for idea in ("een vast moment voor ouders", "eerst luisteren", "samen met een collega"):
        g.wait(2 * MIN)
        g.note("ideas", idea, words=words(idea))
    g.wait(4 * MIN)
    g.do(Press())  # phase 6
    g.wait(5 * MIN)
    plan = "ik bel de ouders deze week en luister eerst"
    g.note("actieplan", plan, True, attempt=1, words=words(plan, {"bel": 0.2}))
    g.wait(3 * MIN)
    g.do(Press())  # phase 7, a round
    for person, takeaway in enumerate(("rust houden", "eerst vragen", "hulp vragen mag", "luisteren"), start=1):
        g.wait(70)
        g.note("takeaways", takeaway, person=person, words=words(takeaway))
        g.do(Press())
    g.do(Press())  # finished
    record = g.record()
    assert record["finished"]
    return record


@pytest.fixture(scope="module")
def record_nl() -> dict[str, Any]:
    return whole_session("nl")


# --- what the group reads -------------------------------------------------------------


def test_the_report_says_when_what_and_who(record_nl: dict[str, Any]) -> None:
    md = build_report(record_nl).markdown()
    assert md.startswith("# Verslag van de intervisie\n")
    assert "- **Datum:** 15-01-2027, 09:00 tot " in md
    assert "- **Methode:** intervisie" in md
    assert "- **Taal:** Nederlands" in md
    assert "- **Deelnemers:** 4" in md
    assert "De sessie is helemaal doorlopen." in md


def test_each_phase_is_shown_planned_against_actual_with_shortening_overtime_and_pauses(record_nl: dict[str, Any]) -> None:
    md = build_report(record_nl).markdown()
    assert "| Fase | Gepland | Werkelijk | Verschil met gepland | Pauze |" in md
    assert "| 1. inventarisatie | 5:00 | 5:00 | – | – |" in md
    assert "| 2. introductie van de kwestie | 5:00 | 7:00 | +2:00 | – |" in md
    # Two minutes over: the next phase was shortened to keep the end time.
    assert "| 3. verkenning met vragen | 10:00, ingekort tot 9:30 | 9:00 | -1:00 | – |" in md
    # The two paused minutes do not count as time in the phase.
    assert "| 4. de kernvraag bepalen | 5:00 | 3:00 | -2:00 | 2:00 |" in md
    assert "| 7. met elkaar afsluiten | 5:00 | 4:40 | -0:20 | – |" in md
    total = sum(p["actual_seconds"] for p in record_nl["phases"])
    assert f"| **Totaal** | **50:00** | **{int(total // 60)}:{int(total % 60):02d}** | **-3:20** | **2:00** |" in md


def test_the_accepted_leervraag_is_shown_with_the_earlier_attempt_listed(record_nl: dict[str, Any]) -> None:
    md = build_report(record_nl).markdown()
    section = md.split("## Leervraag\n")[1].split("\n## ")[0]
    assert "> hoe reageer(?) ik rustig(?) op boze ouders" in section
    assert "Eerdere pogingen:" in section
    assert "- poging 1: hoe ga ik om met boze ouders" in section
    assert "niet bevestigd" not in section


def test_the_actieplan_ideas_and_takeaways_are_listed(record_nl: dict[str, Any]) -> None:
    md = build_report(record_nl).markdown()
    assert "## Actieplan\n\n> ik bel(?) de ouders deze week en luister eerst\n" in md
    assert "## Ideeën\n\n- een vast moment voor ouders\n- eerst luisteren\n- samen met een collega\n" in md
    assert "## Wat iedereen meeneemt\n\n- persoon 1: rust houden\n- persoon 2: eerst vragen\n" in md
    assert "- persoon 4: luisteren\n" in md
    assert "## Kernvraag\n\nNiets vastgelegd.\n" in md


def test_unsure_words_are_marked_and_the_mark_is_explained_at_the_bottom(record_nl: dict[str, Any]) -> None:
    md = build_report(record_nl, low_confidence=0.5).markdown()
    assert md.rstrip().endswith(
        "*Een woord met (?) is door de spraakherkenning niet zeker verstaan (zekerheid onder 50%).*"
    )
    # With a lower threshold those words count as sure: no marks and no explanation.
    strict = build_report(record_nl, low_confidence=0.1).markdown()
    assert "(?)" not in strict


def test_a_leervraag_never_confirmed_shows_the_last_attempt_as_not_confirmed() -> None:
    record = hand_record(
        captures={
            "leervraag": [
                {"text": "eerste poging", "accepted": False, "t": 400.0, "phase": 2, "attempt": 1, "words": []},
                {"text": "tweede poging", "accepted": False, "t": 450.0, "phase": 2, "attempt": 2},
            ]
        }
    )
    md = build_report(record).markdown()
    section = md.split("## Leervraag\n")[1].split("\n## ")[0]
    assert "> tweede poging\n\n*(niet bevestigd)*" in section
    assert "- poging 1: eerste poging" in section
    data = build_report(record).data()
    assert data["leervraag"]["accepted"] is False
    assert [a["text"] for a in data["leervraag"]["earlier_attempts"]] == ["eerste poging"]


def test_an_unfinished_session_says_so_and_shows_the_phases_it_did_not_reach() -> None:
    g = Group(participants=0)
    g.do(Press())
    g.wait(5 * MIN)
    g.do(Press())
    g.wait(3 * MIN)
    record = g.record()
    record["finished"] = False
    md = build_report(record).markdown()
    assert "De sessie is gesloten voordat ze klaar was." in md
    assert "| 2. introductie van de kwestie | 5:00 | 3:00 | -2:00 | – |" in md
    assert "| 3. verkenning met vragen | 10:00 | niet bereikt |  |  |" in md
    assert "- **Deelnemers:** niet geteld" in md
    assert [p["number"] for p in build_report(record).data()["phases_not_reached"]] == [3, 4, 5, 6, 7]


def test_an_english_session_gets_an_english_report() -> None:
    record = whole_session("en")
    md = build_report(record).markdown()
    assert md.startswith("# Report of the intervision\n")
    assert "- **Date:** 2027-01-15, 09:00 to " in md
    assert "- **Language:** English" in md
    assert "| Phase | Planned | Actual | Difference from plan | Paused |" in md
    assert "| 3. exploring with questions | 10:00, shortened to 9:30 | 9:00 | -1:00 | – |" in md
    for heading in ("Learning question", "Core question", "Ideas", "Action plan", "What everyone takes away"):
        assert f"\n## {heading}\n" in md
    assert "- person 2: eerst vragen" in md
    assert "confidence below 50%" in md


def test_the_report_texts_exist_in_both_languages_with_the_same_fields() -> None:
    nl, en = load_phrases("nl").table("report"), load_phrases("en").table("report")
    assert set(nl) == set(en)


def test_the_json_report_has_the_same_content_and_lists_unsure_words_per_item(record_nl: dict[str, Any]) -> None:
    data = json.loads(json.dumps(build_report(record_nl).data()))
    assert data["id"] == "20270115-090000"
    assert data["started"] == "2027-01-15T09:00:00+01:00"
    assert data["method"] == "intervisie" and data["language"] == "nl" and data["finished"] is True
    phase3 = data["phases"][2]
    assert (phase3["planned_seconds"], phase3["adjusted_seconds"], phase3["shortened"]) == (600, 570, True)
    assert phase3["difference_seconds"] == -60
    assert data["difference_seconds"] == sum(p["difference_seconds"] for p in data["phases"]) == -200
    assert data["phases"][3]["paused_seconds"] == 120
    assert data["leervraag"]["text"] == "hoe reageer ik rustig op boze ouders"
    assert data["leervraag"]["low_confidence"] == ["reageer", "rustig"]
    assert data["leervraag"]["first_person"] is True
    assert [a["attempt"] for a in data["leervraag"]["earlier_attempts"]] == [1]
    assert data["actieplan"]["low_confidence"] == ["bel"]
    assert data["kernvraag"] is None
    assert [i["text"] for i in data["ideas"]] == ["een vast moment voor ouders", "eerst luisteren", "samen met een collega"]
    assert [(i["person"], i["text"]) for i in data["takeaways"]][:2] == [(1, "rust houden"), (2, "eerst vragen")]


def test_text_from_the_recogniser_cannot_break_the_markdown() -> None:
    record = hand_record(captures={"ideas": [{"text": "# kop | *ster* [link]", "accepted": True, "t": 1.0}]})
    md = build_report(record).markdown()
    assert "- \\# kop \\| \\*ster\\* \\[link\\]" in md


def hand_record(session_id: str = "20270115-090000", **changes: Any) -> dict[str, Any]:
    """A record written by hand, following the record contract."""
    record: dict[str, Any] = {
        "id": session_id,
        "started_wall": WALL,
        "ended_wall": WALL + 600,
        "method": "intervisie",
        "language": "nl",
        "participants": 3,
        "schedule_mode": "keep_end",
        "finished": False,
        "phases": [
            {
                "number": 1,
                "key": "inventarisatie",
                "name": "inventarisatie",
                "planned_seconds": 300.0,
                "adjusted_seconds": 300.0,
                "actual_seconds": 310.0,
                "overtime_seconds": 10.0,
                "paused_seconds": 0.0,
            }
        ],
        "planned_seconds": 3000.0,
        "actual_seconds": 310.0,
        "captures": {},
    }
    record.update(changes)
    return record


# --- files ----------------------------------------------------------------------------


def test_the_report_files_are_private_and_written_whole(tmp_path: Path, record_nl: dict[str, Any]) -> None:
    md, js = write_report(tmp_path, record_nl)
    assert md == tmp_path / "reports" / "20270115-090000.md"
    assert js == tmp_path / "reports" / "20270115-090000.json"
    assert stat.S_IMODE((tmp_path / "reports").stat().st_mode) == 0o700
    assert stat.S_IMODE(md.stat().st_mode) == 0o600
    assert stat.S_IMODE(js.stat().st_mode) == 0o600
    assert md.read_text(encoding="utf-8") == build_report(record_nl).markdown()
    assert json.loads(js.read_text(encoding="utf-8"))["leervraag"]["text"] == "hoe reageer ik rustig op boze ouders"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "20270115-090000.html", "20270115-090000.json", "20270115-090000.md"
    ]
    # Written again (rebuilt from the record), it replaces the old one.
    write_report(tmp_path, {**record_nl, "participants": 6})
    assert "- **Deelnemers:** 6" in md.read_text(encoding="utf-8")


# --- the command ----------------------------------------------------------------------


def keep(data: Path, record: dict[str, Any]) -> None:
    """Keep a record the way the daemon does."""
    Journal(data).finish(record)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return path


@pytest.fixture
def two_sessions(tmp_path: Path, config: Path, record_nl: dict[str, Any]) -> Path:
    data = tmp_path / "data"
    keep(data, hand_record("20270108-090000", language="en", started_wall=WALL - 7 * 86400, ended_wall=WALL - 7 * 86400 + 600))
    keep(data, record_nl)
    return config


def test_report_prints_the_newest_session_by_default(two_sessions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--config", str(two_sessions)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Verslag van de intervisie\n")
    assert "> hoe reageer(?) ik rustig(?) op boze ouders" in out
    assert main(["report", "last", "--config", str(two_sessions)]) == 0
    assert capsys.readouterr().out == out


def test_report_by_id_prints_that_session_in_its_own_language(two_sessions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "20270108-090000", "--config", str(two_sessions)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Report of the intervision\n")
    assert "The session was closed before it had finished." in out


def test_report_json_is_valid_json(two_sessions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--json", "--config", str(two_sessions)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "20270115-090000"
    assert data["actieplan"]["text"] == "ik bel de ouders deze week en luister eerst"


def test_report_list_shows_the_kept_sessions(two_sessions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--list", "--config", str(two_sessions)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Issue 10, finding 12: the headings follow the configured language (Dutch here), the
    # method is named in each session's own language, "7/7" is a finished session.
    assert lines[0].split() == ["ID", "Datum", "Methode", "Fase", "Leervraag", "Actieplan"]
    assert lines[1].split() == ["20270108-090000", "2027-01-08", "09:00", "intervision", "0/7", "–", "–"]
    assert lines[2].split() == ["20270115-090000", "2027-01-15", "09:00", "intervisie", "7/7", "✓", "✓"]
    assert main(["report", "--list", "--json", "--config", str(two_sessions)]) == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)] == ["20270108-090000", "20270115-090000"]


def test_an_unknown_id_is_one_line_and_exit_code_1(two_sessions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "20990101-000000", "--config", str(two_sessions)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("intervisie: no session with id '20990101-000000'")


@pytest.mark.parametrize("args", [["report"], ["report", "--list"], ["report", "--json"]])
def test_no_sessions_is_one_line_and_exit_code_1(config: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main([*args, "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("intervisie: no sessions have been kept yet")


# --- the daemon keeps the report ------------------------------------------------------


def run_daemon_session(data: Path) -> Daemon:
    """A whole (quick) session through the daemon, on fake clocks."""
    mono, wall = FakeClock(100.0), FakeClock(WALL)
    daemon = Daemon(
        Settings(data_dir=str(data)),
        load_method("intervisie", "nl"),
        load_phrases("nl"),
        Recorder(),
        Journal(data),
        SessionClock(1.0, monotonic=mono),
        wall=wall,
    )
    daemon.start_up()
    daemon.step(Press())
    for number in range(1, 8):
        mono.advance(MIN)
        wall.advance(MIN)
        if number == 6:
            daemon.step(Captured("actieplan", "ik bel de ouders", True, {"attempt": 1}))
        daemon.step(Press())
    return daemon


def test_the_daemon_writes_the_report_when_a_session_ends(tmp_path: Path) -> None:
    daemon = run_daemon_session(tmp_path)
    [record] = daemon.finished_records
    md = tmp_path / "reports" / f"{record['id']}.md"
    js = tmp_path / "reports" / f"{record['id']}.json"
    assert (tmp_path / "records" / f"{record['id']}.json").is_file()
    assert stat.S_IMODE(md.stat().st_mode) == 0o600 and stat.S_IMODE(js.stat().st_mode) == 0o600
    text = md.read_text(encoding="utf-8")
    assert "- **Datum:** 15-01-2027, 09:00 tot 09:07" in text
    assert "| 2. introductie van de kwestie | 5:00 | 1:00 | -4:00 | – |" in text
    assert "## Actieplan\n\n> ik bel de ouders\n" in text
    assert json.loads(js.read_text(encoding="utf-8"))["finished"] is True


def test_a_report_that_cannot_be_written_is_logged_and_the_device_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "reports").write_text("in the way", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="assistant.daemon"):
        daemon = run_daemon_session(tmp_path)
    [record] = daemon.finished_records
    assert (tmp_path / "records" / f"{record['id']}.json").is_file(), "the record is kept all the same"
    assert any("cannot write the report" in r.getMessage() for r in caplog.records)
    daemon.step(Press())
    assert daemon.session.current is not None, "a new session starts as usual"
