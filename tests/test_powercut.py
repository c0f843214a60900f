"""Power cuts: the device comes back in the same phase, with the right time and every kept note.

Two kinds of tests:

- The journal torn at every byte: a journal written by a real session (in this process,
  on a clock the test moves) is cut off at each byte of its last lines, as a power cut
  while a line is written leaves it (also with the zero bytes a file system can leave
  behind), and the device restarts on each copy.
- The real daemon process killed with SIGKILL again and again through one session, at
  random moments (seeded; the seed is printed), while it times a phase, while it
  writes a burst of journal lines, and while it records or reads back a leervraag or
  actieplan heard by the real Vosk model through a FIFO microphone.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.clock import FakeClock, SessionClock
from assistant.daemon import Daemon
from assistant.events import Event, Heard, ListenerState, Press, Tick
from assistant.journal import Journal
from assistant.method import Method, load_method
from assistant.phrases import Phrases, load_phrases
from assistant.settings import Settings

LEERVRAAG = "hoe blijf ik rustig als mijn klas onrustig wordt"
WALL0 = 1_800_000_000.0


class Recorder:
    """Stands in for the speaker in the in-process tests: what was said."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def prepare(self, texts: Any) -> None:
        pass

    def say(self, text: str) -> None:
        self.said.append(text)

    def tone(self, kind: str) -> None:
        pass

    def stop(self) -> None:
        pass


class Listener:
    """Stands in for the recogniser in the in-process tests: always ready."""

    state = "ready"

    def capture(self, kind: str, continuous: bool) -> None:
        pass

    def stop(self, finish: bool = True) -> None:
        pass


@dataclass
class Device:
    """A daemon in this process on a data directory, on clocks the test moves."""

    data: Path
    method: Method
    phrases: Phrases
    mono: FakeClock = field(default_factory=lambda: FakeClock(100.0))
    wall: FakeClock = field(default_factory=lambda: FakeClock(WALL0))

    def __post_init__(self) -> None:
        self.speaker = Recorder()
        self.daemon = Daemon(
            Settings(data_dir=str(self.data)), self.method, self.phrases, self.speaker, Journal(self.data),
            SessionClock(1.0, monotonic=self.mono), wall=self.wall, listener=Listener(),
        )
        self.daemon.start_up()
        self.daemon.step(ListenerState("ready"))

    def do(self, event: Event) -> None:
        self.daemon.step(event)

    def wait(self, seconds: float) -> None:
        """Time passes; due announcements are made as the loop would."""
        end = self.mono.t + seconds
        while (due := self.daemon.session.next_deadline()) is not None and due - self.daemon.clock.now() <= end - self.mono.t:
            step = max(0.0, due - self.daemon.clock.now())
            self.mono.advance(step)
            self.wall.advance(step)
            self.do(Tick())
        self.wall.advance(end - self.mono.t)
        self.mono.advance(end - self.mono.t)

    def state(self) -> dict[str, Any]:
        """What the group would notice: phase, pause, time left, the note, what was kept."""
        session = self.daemon.session
        run = session.current
        now = self.daemon.clock.now()
        note = run.note if run else None
        return {
            "phase": run.phase.number if run else None,
            "paused": session.paused,
            "left": round(run.left(now), 6) if run else None,
            "note": None if note is None else (note.stage, note.attempts),
            "captures": session.captures,
        }


@pytest.fixture(scope="module")
def dutch() -> tuple[Method, Phrases]:
    return load_method("intervisie", "nl"), load_phrases("nl")


def _line_ends(data: bytes) -> list[int]:
    return [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]


def test_a_journal_torn_at_any_byte_resumes_from_the_line_before_and_says_what_was_dropped(
    tmp_path: Path, dutch: tuple[Method, Phrases], caplog: pytest.LogCaptureFixture
) -> None:
    method, phrases = dutch
    live = Device(tmp_path / "live", method, phrases)
    live.do(Press())
    live.wait(200)
    live.do(Press())  # phase 2: the leervraag
    live.wait(20)
    live.do(Press())  # invites it
    live.do(Heard(kind="leervraag", text=LEERVRAAG, words=[{"word": w, "conf": 0.9} for w in LEERVRAAG.split()]))
    live.wait(10)
    live.do(Press())  # "Bewaard."
    live.wait(50)
    live.do(Press())  # phase 3
    journal = (tmp_path / "live" / "current.jsonl").read_bytes()
    ends = _line_ends(journal)
    assert len(ends) >= 7 and ends[-1] == len(journal)
    names = [json.loads(journal[a:b]).get("event", "header") for a, b in zip([0, *ends], ends)]
    assert names[-3:] == ["heard", "press", "press"]
    # The last three lines: the leervraag heard (a long line with the note in it), kept, phase 3.
    cases = 0
    for line in (-3, -2, -1):
        start, end = ends[line - 1], ends[line]
        clean = _restart(tmp_path / f"clean{line}", journal[:start], method, phrases)
        expected = clean.state()
        for cut in range(start, end):
            for zeros in (False, True):
                torn = journal[:cut] + (b"\0" * (end - cut) if zeros else b"")
                if cut == start and not zeros:
                    continue
                caplog.clear()
                device = _restart(tmp_path / f"torn-{line}-{cut}-{zeros:d}", torn, method, phrases)
                cases += 1
                assert device.state() == expected, f"cut at byte {cut} of line {line}"
                warnings = [r.getMessage() for r in caplog.records if "cut off" in r.getMessage()]
                assert len(warnings) == 1, f"the torn line is reported once (cut at {cut}, zeros {zeros})"
                if cut - start >= len(f'{{"event":"{names[line]}"'):
                    assert f"dropped {cut - start} bytes of a '{names[line]}' event" in warnings[0]
                assert LEERVRAAG not in caplog.text and "rustig" not in caplog.text, "the note never reaches the log"
                repaired = (device.data / "current.jsonl").read_bytes()
                assert repaired.startswith(journal[:start]) and all(
                    json.loads(raw) for raw in repaired.splitlines()
                ), "the journal was repaired: whole lines only, and the next event on a line of its own"
    print(f"{cases} torn journals resumed")
    # What each cut means for the group:
    heard_cut = _restart(tmp_path / "heard-cut", journal[: ends[-3] - 5], method, phrases)
    assert heard_cut.speaker.said[-1] == "Zeg het nog een keer, na de toon.", "a note torn while heard is asked again"
    keep_cut = _restart(tmp_path / "keep-cut", journal[: ends[-2] - 3], method, phrases)
    assert keep_cut.speaker.said[-2] == f"Ik heb genoteerd: {LEERVRAAG}.", "a keep that never got to disk: read back again"
    assert not keep_cut.daemon.session.captures["leervraag"][0]["accepted"]
    keep_cut.do(Press())
    assert keep_cut.speaker.said[-1] == "Bewaard."
    phase_cut = _restart(tmp_path / "phase-cut", journal[: ends[-1] - 1], method, phrases)
    assert phase_cut.state()["phase"] == 2 and phase_cut.daemon.session.captures["leervraag"][0]["accepted"]


def _restart(data: Path, journal: bytes, method: Method, phrases: Phrases) -> Device:
    """A new process after the power came back, 5 s after the last complete line."""
    data.mkdir(parents=True)
    (data / "current.jsonl").write_bytes(journal)
    last = json.loads(journal.split(b"\n")[:-1][-1])  # the last complete line
    return Device(data, method, phrases, wall=FakeClock(float(last.get("wall", WALL0)) + 5.0))


def test_a_damaged_line_further_up_keeps_the_session_up_to_it(
    tmp_path: Path, dutch: tuple[Method, Phrases], caplog: pytest.LogCaptureFixture
) -> None:
    method, phrases = dutch
    live = Device(tmp_path / "live", method, phrases)
    live.do(Press())
    live.wait(300)
    live.do(Press())
    live.do(Press())
    live.do(Heard(kind="leervraag", text=LEERVRAAG))
    live.do(Press())  # kept
    live.wait(30)
    live.do(Press())  # phase 3
    live.wait(30)
    live.do(Press())  # phase 4
    journal = (tmp_path / "live" / "current.jsonl").read_bytes()
    lines = journal.splitlines(keepends=True)
    # A bad sector in the line of phase 3's press (SD cards do this): the lines after it
    # are whole, but events only make sense in order.
    damaged = len(lines) - 2
    broken = b"".join(lines[:damaged]) + b'{"event":"press","t":5\xff\xfe' + lines[damaged][20:] + lines[-1]
    caplog.set_level(logging.INFO)
    again = _restart(tmp_path / "again", broken, method, phrases)
    errors = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(errors) == 1 and f"line {damaged + 1} is damaged" in errors[0] and "1 lines after it were dropped" in errors[0]
    assert again.state()["phase"] == 2, "resumed where the last good line left it"
    assert again.daemon.session.captures["leervraag"][0]["accepted"], "the kept leervraag before the damage is kept"
    assert again.speaker.said[-1].startswith("Ik was even uitgevallen. We gaan verder met fase 2")
    assert (tmp_path / "again" / "current.jsonl").read_bytes().startswith(b"".join(lines[:damaged]))


# ------------------------------------------------------------- the real daemon process

PLANNED = {1: 300.0, 2: 300.0, 3: 600.0, 4: 300.0, 5: 600.0, 6: 600.0, 7: 300.0}
"""Each phase's length in seconds (the method's, with ``schedule.mode = "fixed"``)."""
RESUMED = re.compile(
    r"resumed session (?P<id>\S+) after (?P<off>[\d.]+) s off: phase (?P<phase>\d+), "
    r"(?P<left>-?[\d.]+) s left(?P<paused> \(paused\))?, notes kept: (?P<notes>.*)$"
)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every line of a journal, each of which must be whole JSON (a repaired journal)."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the journal ends with a whole line"
    return [json.loads(line) for line in raw.splitlines()]


def time_left_error(resumed: str, entries: list[dict[str, Any]], speed: float, phase: int, started_wall: float) -> float:
    """How far (session seconds) the resumed time left is from the wall clock's truth.

    The truth: the phase began when its press was taken (``started_wall``, the wall
    clock of that press in the journal); since then the session clock ran at
    ``speed`` through everything, the time the device was off included, except while
    paused (between long presses). ``resumed`` is the daemon's resume log line; the
    moment it speaks of is the journal's last ``resume`` line.
    """
    match = RESUMED.search(resumed)
    assert match, f"not a resume line: {resumed!r}"
    assert int(match["phase"]) == phase, f"resumed in phase {match['phase']}, expected {phase}"
    at = [e for e in entries if e.get("event") == "resume"][-1]["wall"]
    toggles = [e["wall"] for e in entries if e.get("event") == "long_press" and started_wall < e["wall"] <= at]
    if len(toggles) % 2:
        toggles.append(at)  # still paused
    paused = sum(b - a for a, b in zip(toggles[::2], toggles[1::2]))
    truth = PLANNED[phase] - speed * ((at - started_wall) - paused)
    return abs(float(match["left"]) - truth)
