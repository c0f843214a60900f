"""The spoken recap at the end (issue 11, item 1).

After the last phase, before the time summary and the goodbye, the device reads what was
kept: the leervraag, the kernvraag and the actieplan, and how many ideas and closing
sentences were written down, so the case-giver can write it down. What was not kept is
left out; with nothing kept there is no recap; ``[report] recap = false`` switches it
off; a press cuts it short as any speech; and what the group said never reaches the log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support import (
    Recorder,
    ScriptedListener,
)
from test_notes import Group, make_session

from assistant.config import load_method, load_phrases, load_settings
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import ButtonDown, Heard, ListenerState, Press, Say
from assistant.core.session import Session
from assistant.core.settings import ReportSettings, Settings
from assistant.service.daemon import Daemon as LoopDaemon
from assistant.storage.journal import Journal

LEERVRAAG = "hoe blijf ik rustig als een leerling mij uitdaagt"
KERNVRAAG = "wanneer grijp ik in"
ACTIEPLAN = "ik spreek de leerling morgen apart aan"
IDEAS = ("een vast moment voor feedback", "samen voorbereiden", "de ouders betrekken")
TAKEAWAYS = ("eerst luisteren", "vaker om hulp vragen", "rust nemen", "samen evalueren")


def keep(group: Group, kind: str, text: str) -> None:
    """The phase of ``kind`` runs: press for the note, say it, press to keep it."""
    group.press()
    group.hear(text, kind=kind)
    group.press()


def not_kept(group: Group, kind: str, text: str) -> None:
    """The note is heard and read back, then recorded again, nothing comes, and a press
    goes on without it: only an attempt that was not kept is in the record."""
    group.press()
    group.hear(text, kind=kind)
    group.double()
    group.hear("", kind=kind)
    group.press()


def whole_session(
    group: Group,
    leervraag: str | None = LEERVRAAG,
    kernvraag: str | None = KERNVRAAG,
    ideas: tuple[str, ...] = IDEAS,
    actieplan: str | None = ACTIEPLAN,
    takeaways: tuple[str, ...] = TAKEAWAYS,
) -> None:
    """A whole session in which the given notes are kept (None: tried but not kept)."""
    group.to_phase(2)
    if leervraag is None:
        not_kept(group, "leervraag", LEERVRAAG)
    elif leervraag:
        keep(group, "leervraag", leervraag)
    group.to_phase(4)
    if kernvraag is None:
        not_kept(group, "kernvraag", KERNVRAAG)
    elif kernvraag:
        keep(group, "kernvraag", kernvraag)
    group.to_phase(5)
    for idea in ideas:
        group.hear(idea, kind="ideas")
    group.to_phase(6)
    if actieplan is None:
        not_kept(group, "actieplan", ACTIEPLAN)
    elif actieplan:
        keep(group, "actieplan", actieplan)
    group.to_phase(7)
    for sentence in takeaways:
        group.hear(sentence, kind="takeaways")
    group.press()  # the end
    assert group.session.status == "finished"


def the_end(group: Group) -> list[tuple[str, str]]:
    """(key, text) of everything said from the goodbye on."""
    said = [(e.key, e.text) for e in group.effects if isinstance(e, Say)]
    keys = [key for key, _ in said]
    return said[keys.index("finished"):]


# --- through the session ------------------------------------------------------------------


def test_the_recap_reads_every_kept_note_after_the_goodbye_and_before_the_summary() -> None:
    group = Group(make_session())
    whole_session(group)
    end = the_end(group)
    assert [key for key, _ in end] == ["finished", "recap", "summary", "new_session"]
    assert end[1][1] == (
        "Dit hebben we genoteerd. "
        f"De leervraag: {LEERVRAAG}. De kernvraag: {KERNVRAAG}. Het actieplan: {ACTIEPLAN}. "
        "Er zijn 3 ideeën en 4 afsluitende zinnen opgeschreven."
    )


def test_the_recap_in_english() -> None:
    group = Group(make_session(lang="en"))
    whole_session(group, ideas=IDEAS[:1])
    [recap] = [text for key, text in the_end(group) if key == "recap"]
    assert recap == (
        "Here are the notes. "
        f"The learning question: {LEERVRAAG}. The core question: {KERNVRAAG}. The action plan: {ACTIEPLAN}. "
        "We wrote down one idea and 4 closing sentences."
    )


def test_notes_that_were_not_kept_are_left_out() -> None:
    group = Group(make_session())
    whole_session(group, leervraag=None, kernvraag="", ideas=IDEAS[:1], takeaways=())
    record = group.session.record()
    assert [i["accepted"] for i in record["captures"]["leervraag"]] == [False], "it was heard, but not kept"
    [recap] = [text for key, text in the_end(group) if key == "recap"]
    assert recap == f"Dit hebben we genoteerd. Het actieplan: {ACTIEPLAN}. Er is één idee opgeschreven."
    assert LEERVRAAG not in recap


def test_only_closing_sentences_are_counted_with_the_verb_that_fits() -> None:
    group = Group(make_session())
    whole_session(group, leervraag="", kernvraag="", ideas=(), actieplan="", takeaways=TAKEAWAYS[:2])
    [recap] = [text for key, text in the_end(group) if key == "recap"]
    assert recap == "Dit hebben we genoteerd. Er zijn 2 afsluitende zinnen opgeschreven."


@pytest.mark.parametrize("listener", ["ready", ""])
def test_with_nothing_kept_there_is_no_recap(listener: str) -> None:
    group = Group(make_session(), listener=listener)
    if listener:
        whole_session(group, leervraag=None, kernvraag=None, ideas=(), actieplan=None, takeaways=())
    else:  # no speech recognition at all: the device only kept time
        group.to_phase(7)
        group.press()
    assert [key for key, _ in the_end(group)] == ["finished", "summary", "new_session"]


def test_recap_false_leaves_it_out() -> None:
    session = Session(load_method("intervisie", "nl"), load_phrases("nl"), recap=False)
    group = Group(session)
    whole_session(group)
    assert [key for key, _ in the_end(group)] == ["finished", "summary", "new_session"]


def test_the_recap_is_on_by_default_and_off_in_the_settings_file(tmp_path: Path) -> None:
    assert Settings().report.recap is True
    assert load_settings().report.recap is True, "config/default.toml says so too"
    user = tmp_path / "config.toml"
    user.write_text("[report]\nrecap = false\n")
    assert load_settings(user).report == ReportSettings(recap=False)


def test_the_recap_counts_the_closing_sentence_that_comes_after_the_last_press() -> None:
    session = Session(load_method("intervisie", "nl"), load_phrases("nl"), last_words_seconds=2.0)
    group = Group(session)
    whole_session(group, leervraag="", kernvraag="", ideas=(), actieplan="", takeaways=TAKEAWAYS[:1])
    assert [key for key, _ in the_end(group)] == ["finished"], "the rest waits for the recogniser's last words"
    group.t += 0.5
    group.do(Heard(kind="takeaways", text=TAKEAWAYS[1], words=[]))
    end = the_end(group)
    assert [key for key, _ in end] == ["finished", "recap", "summary", "new_session"]
    assert end[1][1] == "Dit hebben we genoteerd. Er zijn 2 afsluitende zinnen opgeschreven."


# --- through the daemon -------------------------------------------------------------------


class Speaker(Recorder):
    """The Recorder, with what the daemon did to the speaker in order (say, stop)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def say(self, text: str) -> None:
        super().say(text)
        self.calls.append(text)

    def stop(self) -> None:
        self.calls.append("<stop>")


def loop_daemon(tmp_path: Path, recap: bool = True) -> tuple[LoopDaemon, Speaker]:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    speaker = Speaker()
    listener = ScriptedListener()
    daemon = LoopDaemon(
        Settings(data_dir=str(tmp_path / "data"), report=ReportSettings(recap=recap)),
        load_method("intervisie", "nl"),
        load_phrases("nl"),
        speaker,
        Journal(tmp_path / "data"),
        SessionClock(1.0, monotonic=mono),
        wall=wall,
        listener=listener,
    )
    daemon.start_up()
    daemon.step(ListenerState("ready"))
    return daemon, speaker


def press(daemon: LoopDaemon) -> None:
    daemon.step(ButtonDown())
    daemon.step(Press())


def to_phase(daemon: LoopDaemon, number: int) -> None:
    """Press on (a note that is asked for gets nothing: it goes on without) until phase ``number`` runs."""
    while daemon.session.current is None or daemon.session.current.phase.number < number:
        press(daemon)
        note = daemon.session.current.note if daemon.session.current else None
        if note is not None and note.stage == "listening":
            daemon.step(Heard(kind=note.kind, text="", words=[]))
            press(daemon)


def run_through(daemon: LoopDaemon) -> None:
    """A session through the daemon: the leervraag kept, two ideas, the end."""
    to_phase(daemon, 2)
    press(daemon)  # for the leervraag
    daemon.step(Heard(kind="leervraag", text=LEERVRAAG, words=[]))
    press(daemon)  # keep it
    to_phase(daemon, 5)
    for idea in IDEAS[:2]:
        daemon.step(Heard(kind="ideas", text=idea, words=[]))
    to_phase(daemon, 7)
    press(daemon)  # the end


def test_the_daemon_says_the_recap_and_keeps_it_out_of_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    daemon, speaker = loop_daemon(tmp_path)
    run_through(daemon)
    daemon.step(ButtonDown())  # nothing came after the last press: its wait ends with the next gesture
    recap = f"Dit hebben we genoteerd. De leervraag: {LEERVRAAG}. Er zijn 2 ideeën opgeschreven."
    assert recap in speaker.said
    at = speaker.said.index(recap)
    assert speaker.said[at - 1].startswith("Dat was de laatste fase.")
    assert speaker.said[at + 1].startswith("Zo liep de tijd.")
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert f"say [recap]: ({len(recap)} characters of a note, not logged)" in log
    assert "rustig" not in log and "feedback" not in log and "genoteerd" not in log
    [record] = daemon.finished_records
    assert record["captures"]["leervraag"][0]["text"] == LEERVRAAG, "the record keeps it"


def test_a_press_cuts_the_recap_short(tmp_path: Path) -> None:
    daemon, speaker = loop_daemon(tmp_path)
    run_through(daemon)
    daemon.step(Heard(kind="takeaways", text=TAKEAWAYS[0], words=[]))  # the last words: the rest is said
    recap = next(text for text in speaker.calls if text.startswith("Dit hebben we genoteerd."))
    before = len(speaker.calls)
    daemon.step(ButtonDown())
    assert speaker.calls.index(recap) == before - 3, "the recap, the summary and how to begin anew were queued"
    assert speaker.calls[before:] == ["<stop>"], "the press cuts the speech at once, the recap with it"
    assert speaker.tones[-1] == "press"


def test_the_daemon_says_no_recap_with_recap_false(tmp_path: Path) -> None:
    daemon, speaker = loop_daemon(tmp_path, recap=False)
    run_through(daemon)
    daemon.step(ButtonDown())
    assert not any("genoteerd" in text for text in speaker.said[-3:])
    assert speaker.said[-3].startswith("Dat was de laatste fase.") and speaker.said[-2].startswith("Zo liep de tijd.")


# --- the real daemon process ----------------------------------------------------------------
# A whole session run as a process, with a spoken leervraag, the recap played into the
# file sound card and kept out of the log: tests/test_notes_home.py (with the slip).
