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
from support import HANGUL, RESUMED, Recorder, time_left_error

from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import Event, Heard, ListenerState, Press, Tick
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import Settings
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal

LEERVRAAG = "hoe blijf ik rustig als mijn klas onrustig wordt"
WALL0 = 1_800_000_000.0


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
        clock = self.daemon.clock
        while (due := self.daemon.session.next_deadline()) is not None and due - clock.now() <= end - self.mono.t:
            step = max(0.0, due - clock.now())
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


@pytest.mark.slow
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
    names = [json.loads(journal[a:b]).get("event", "header") for a, b in zip([0, *ends], ends, strict=False)]
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
    assert keep_cut.speaker.said[-2] == f"Ik heb genoteerd: {LEERVRAAG}.", "a keep not on disk: read back again"
    assert not keep_cut.daemon.session.captures["leervraag"][0]["accepted"]
    keep_cut.do(Press())
    assert keep_cut.speaker.said[-1] == "Bewaard."
    phase_cut = _restart(tmp_path / "phase-cut", journal[: ends[-1] - 1], method, phrases)
    assert phase_cut.state()["phase"] == 2 and phase_cut.daemon.session.captures["leervraag"][0]["accepted"]


@pytest.mark.slow
def test_a_journal_cut_off_in_its_first_line_greets_again_and_says_why_once(
    tmp_path: Path, dutch: tuple[Method, Phrases], caplog: pytest.LogCaptureFixture
) -> None:
    # The power went as the group pressed to start: nothing of the session is on disk
    # but part of its first line (or nothing, or the zeros an SD card leaves).
    method, phrases = dutch
    live = Device(tmp_path / "live", method, phrases)
    live.do(Press())
    journal = (tmp_path / "live" / "current.jsonl").read_bytes()
    first = journal.index(b"\n")
    tears = [journal[:cut] for cut in range(0, first)] + [b"\0" * 64]

    def greets_again(name: str, content: bytes, why: str) -> Device:
        caplog.clear()
        data = tmp_path / name
        data.mkdir()
        (data / "current.jsonl").write_bytes(content)
        device = Device(data, method, phrases)
        assert device.state()["phase"] is None
        assert device.speaker.said[0].startswith("Hallo, ik ben klaar"), f"greets again ({name})"
        said = [r.getMessage() for r in caplog.records if why in r.getMessage()]
        assert len(said) == 1 and "starting a new session" in said[0], f"said once why ({name})"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a power cut is no error"
        assert not (data / "current.jsonl").exists()
        assert not list(data.glob("records/*.json")) and not list(data.glob("reports/*")), "no record of nothing"
        return device

    for number, torn in enumerate(tears):
        device = greets_again(f"torn-{number}", torn, "as its session started")
        device.do(Press())
        assert device.state()["phase"] == 1, "the group starts again with one press"
    print(f"{len(tears)} journals cut off in their first line")
    # The first line whole, the press not yet written: nothing happened, nothing is kept.
    greets_again("header-only", journal[: first + 1], "never started")


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
    assert len(errors) == 1, "reported once"
    assert f"line {damaged + 1} is damaged" in errors[0] and "1 lines after it were dropped" in errors[0]
    assert again.state()["phase"] == 2, "resumed where the last good line left it"
    assert again.daemon.session.captures["leervraag"][0]["accepted"], "the kept leervraag before the damage is kept"
    assert again.speaker.said[-1].startswith("Ik was even uitgevallen. We gaan verder met fase 2")
    assert (tmp_path / "again" / "current.jsonl").read_bytes().startswith(b"".join(lines[:damaged]))


def test_a_cut_between_the_record_and_the_report_writes_the_report_at_the_next_start(
    tmp_path: Path, dutch: tuple[Method, Phrases]
) -> None:
    method, phrases = dutch
    device = Device(tmp_path, method, phrases)
    device.do(ListenerState("off"))  # no notes: every press moves on
    device.do(Press())
    for minutes in (5, 5, 10, 5, 10, 10, 5):
        device.wait(minutes * 60)
        device.do(Press())
    (record,) = (tmp_path / "records").glob("*.json")
    report = tmp_path / "reports" / f"{record.stem}.md"
    assert report.exists()
    report.unlink()  # as if the power went right after the record was written
    again = Device(tmp_path, method, phrases, mono=device.mono, wall=device.wall)
    assert report.exists() and "Verslag van de intervisie" in report.read_text()
    assert again.speaker.said[0].startswith("Hallo, ik ben klaar")


# ------------------------------------------------------------- the real daemon process

SPEED = 20.0
"""Session clock speed of the killed daemon: one session second is 50 ms."""
SPOKEN = "회의를 시작합니다"
"""What the case-giver says for the leervraag and the actieplan (Korean, for the Korean model)."""
NOTE_PHASES = {2: "leervraag", 6: "actieplan"}
PATIENCE = 40.0
"""Longest wait for any log line (a model load on a busy 2-core machine included)."""


def _test_method(path: Path) -> Path:
    """The method with notes only on a press (no self-invitation) and no kernvraag note.

    The test decides when a note is recorded; a kernvraag would make phase 4's press
    invite a note instead of moving on.
    """
    text = (Path(__file__).resolve().parent.parent / "config" / "methods" / "intervisie.toml").read_text()
    text = re.sub(r"(?m)^invite_minutes_left = \d+$", "invite_minutes_left = 0", text)
    text = text.replace('capture = "kernvraag"\n', "")
    path.write_text(text)
    return path


@dataclass
class Cut:
    """One power cut and what the restart showed."""

    kind: str
    phase: int
    error: float | None = None
    torn: str = ""


class PowerCuts:
    """The session under test: one daemon process after the other on the same data."""

    def __init__(self, tmp_path: Path, rng: random.Random, seed: int) -> None:
        from support import Microphone, join, no_dither_model, speech

        from assistant.testing import filesound

        self.tmp_path, self.rng, self.seed = tmp_path, rng, seed
        self.sound = filesound.write_asoundrc(tmp_path / "home")
        self.mic = Microphone(self.sound.inp)
        quiet = [self.mic.quiet] * 3
        import numpy as np

        self.clip = np.concatenate([np.frombuffer(b, np.int16) for b in quiet] + [join(speech(SPOKEN))])
        self.clip_seconds = len(self.clip) / 16000
        self.data = tmp_path / "data"
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            f'data_dir = "{self.data}"\nparticipants = 0\nmethod = "{_test_method(tmp_path / "method.toml")}"\n'
            f'[schedule]\nmode = "fixed"\n'
            f'[listening]\nmodel = "{no_dither_model(tmp_path / "model")}"\n'
            "silence_seconds = 1.0\nwait_seconds = 7.0\nmax_seconds = 20\n"
        )
        self.daemon: Any = None
        self.cursor = 0
        """Where :meth:`_wait_any` goes on in the current process's log."""
        self.incarnations = 0
        self.phase = 0
        self.started_wall: dict[int, float] = {}
        self.kept: set[str] = set()
        """Notes whose "Bewaard." the group heard: never to be lost."""
        self.heard_chars: dict[str, int] = {}
        """Length of the read-back the group kept, per note (the log gives only lengths)."""
        self.cuts: list[Cut] = []
        self.logs: list[str] = []

    # --- processes ----------------------------------------------------------------

    def start(self) -> Any:
        from support import Daemon

        self.daemon = Daemon(self.tmp_path, "--speed", f"{SPEED:g}", env={"HOME": str(self.sound.home)})
        self.incarnations += 1
        self.cursor = 0
        return self.daemon

    def cut(self, kind: str, after: float = 0.0, in_flight: bool = False) -> None:
        """Pull the plug ``after`` seconds from now; then restart and check the device."""
        if after > 0:
            time.sleep(after)
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.finish()
        self.logs.extend(self.daemon.log)
        cut = Cut(kind, self.phase)
        self.cuts.append(cut)
        journal = self.data / "current.jsonl"
        if not journal.exists():
            # Either the first press never got to disk (the device greets again), or the
            # last one did, and the finished session's journal gave way to its record.
            assert in_flight and self.phase in (0, 7), f"the journal is gone (seed {self.seed})"
            if self.phase == 7:
                assert list((self.data / "records").glob("*.json"))
                self.phase = 8
            self.start()
            self.seen("say [ready]")
            return
        raw = journal.read_bytes()
        lines = raw.split(b"\n")
        complete = [json.loads(line) for line in lines[:-1]]  # every whole line is readable
        if lines[-1]:
            cut.torn = f"killed mid-line ({len(lines[-1])} bytes)"
        elif self.rng.random() < 0.12 and complete[-1].get("event") in ("resume", "listener", "tick"):
            # SIGKILL never stops a small write halfway; a power cut on an SD card can.
            # Tear a line that does not move the phase, at a random byte, as it would.
            last = raw[: -1].rfind(b"\n") + 1
            keep = self.rng.randrange(last + 1, len(raw) - 1)
            journal.write_bytes(raw[:keep])
            cut.torn = f"torn by the test ({len(raw) - keep} of {len(raw) - last} bytes cut)"
            complete.pop()
        presses = [e["wall"] for e in complete if e.get("event") == "press"]
        daemon = self.start()
        where = f"(seed {self.seed}, cut {len(self.cuts)}: {kind} in phase {self.phase})"
        line = self._wait_any(["resumed session", "say [ready]"])
        self.cursor = 0  # what the device said while resuming (a read-back) comes before that line
        reported = [entry for entry in daemon.log if "cut off" in entry]
        if cut.torn:
            assert len(reported) == 1 and "dropped" in reported[0], f"a torn line is reported once {where}"
        else:
            assert not reported, f"nothing torn, nothing reported {where}"
        if "say [ready]" in line and self.phase == 0:
            # The start press did not get to disk: nothing of the session is kept.
            assert in_flight and not presses, f"a session that started was not resumed {where}"
            assert not list((self.data / "records").glob("*.json")), f"a session that never started was kept {where}"
            return
        if "say [ready]" in line:
            # The last press got to disk before the cut: the session is over, its record kept.
            assert in_flight and self.phase == 7, f"a new session instead of a resumed one {where}"
            self.phase = 8
            return
        match = RESUMED.search(line)
        assert match, line
        phase = int(match["phase"])
        if in_flight:
            assert phase in (self.phase, self.phase + 1), f"resumed in phase {phase} {where}"
            if phase == self.phase + 1:
                self.started_wall[phase] = presses[-1]  # the press got to disk before the cut
                self.phase = phase
        assert phase == self.phase, f"resumed in phase {phase} {where}"
        notes = set(match["notes"].split(", ")) - {"none"}
        assert self.kept <= notes, f"a kept note was lost: {self.kept - notes} {where}"
        entries = [json.loads(raw_line) for raw_line in journal.read_bytes().split(b"\n")[:-1]]
        cut.error = time_left_error(line, entries, SPEED, phase, self.started_wall[phase])
        assert cut.error <= 1.0, f"time left off by {cut.error:.2f} s {where}"
        if match["paused"]:
            daemon.key("p")
            daemon.expect("say [unpaused]")
        return None

    def kept_now(self) -> set[str]:
        """The notes the restarted device says it kept (its resume line)."""
        line = next(entry for entry in reversed(self.daemon.log) if "resumed session" in entry)
        match = RESUMED.search(line)
        assert match
        return set(match["notes"].split(", ")) - {"none"}

    # --- what the group does ---------------------------------------------------------

    def advance(self) -> None:
        """Press for the next phase, sometimes pulling the plug while the press is written."""
        target = self.phase + 1
        while self.phase < target:
            self.daemon.key("")
            if self.rng.random() < 0.5:
                self.cut("press being written", after=self.rng.uniform(0.0, 0.03), in_flight=True)
                continue
            if target == 8:
                self.daemon.expect("say [summary]", timeout=PATIENCE)
                self.phase = target
                return
            self.daemon.expect(f"say [phase]: Fase {target}:", timeout=PATIENCE)
            self.phase = target
            time.sleep(0.05)  # its journal line is written before it is said; read it
            raw = (self.data / "current.jsonl").read_bytes()
            self.started_wall[target] = [json.loads(x) for x in raw.split(b"\n")[:-1] if b'"press"' in x][-1]["wall"]

    def timed_cuts(self, count: int) -> None:
        """Cuts at random moments while the phase runs: idle, a burst of pauses, start-up."""
        for _ in range(count):
            roll = self.rng.random()
            if roll < 0.3:
                # A burst of journal lines (the group pauses and goes on, again and again).
                self.daemon.key("\n".join("p" * self.rng.randint(3, 9)))
                self.cut("burst of journal writes", after=self.rng.uniform(0.0, 0.05))
            elif roll < 0.4:
                # The previous cut's restart is already up: start a fresh one and cut it early.
                self.daemon.proc.send_signal(signal.SIGKILL)
                self.daemon.finish()
                self.logs.extend(self.daemon.log)
                self.start()
                self.cut("while starting up", after=self.rng.uniform(0.0, 0.6))
            else:
                self.cut("while the phase runs", after=self.rng.uniform(0.0, 1.2))

    def note(self, kind: str) -> None:
        """Record the phase's note with cuts while it is heard, read back and kept."""
        self.seen("speech recognition: ready")
        self.daemon.key("")
        self.daemon.expect("say [note_invite]", timeout=PATIENCE)
        self.wait_quiet()
        speaking = threading.Thread(target=self.mic.say, args=(self.clip,), daemon=True)
        speaking.start()
        self.cut(f"{kind} being said", after=self.rng.uniform(0.1, self.clip_seconds + 0.6))
        speaking.join(30)
        # The restart asks for it again (or reads it back, when it was heard before the cut).
        while True:
            heard = self._wait_any(["say [note_heard]", "say [note_invite]", "say [note_again]", "say [note_nothing]"])
            if "note_heard" in heard:
                break
            if "note_nothing" in heard:
                self.daemon.key("d")  # try again
                continue
            self.wait_quiet()
            self.mic.say(self.clip)
        for _ in range(self.rng.randint(1, 2)):
            self.cut(f"{kind} being read back", after=self.rng.uniform(0.0, 2.0))
            heard = self._wait_any(["say [note_heard]"])
        while kind not in self.kept:
            chars = int(re.search(r"\((\d+) characters", heard)[1])  # type: ignore[index]
            self.daemon.key("")
            if self.rng.random() < 0.6:
                self.cut(f"{kind} being kept", after=self.rng.uniform(0.0, 0.03))
                if kind in self.kept_now():
                    self.kept.add(kind)
                    self.heard_chars[kind] = chars
                else:
                    heard = self._wait_any(["say [note_heard]"])  # read back again
                continue
            self.daemon.expect("say [note_saved]", timeout=PATIENCE)
            self.kept.add(kind)
            self.heard_chars[kind] = chars
        self.cut(f"{kind} just kept", after=self.rng.uniform(0.0, 0.5))

    def wait_quiet(self, quiet: float = 0.8) -> None:
        """Wait until the device is done saying what it just began (the invitation).

        By the sound card's file, which stops changing when nothing plays (its size is
        no measure: a new process, or a reopened stream, starts it again).
        """
        began = time.monotonic()
        deadline = began + PATIENCE
        last, changed = None, began
        while True:
            now = time.monotonic()
            info = self.sound.out.stat()
            assert now < deadline, f"the device did not fall silent (seed {self.seed}):\n{self._sound_map()}\n" + "".join(
                self.daemon.log
            )
            state = (info.st_size, info.st_mtime_ns)
            if state != last:
                last, changed = state, now
            elif now - began >= 1.0 and now - changed >= quiet:
                return
            time.sleep(0.05)

    def _sound_map(self, seconds: float = 40.0) -> str:
        """The sound card's last seconds, 0.1 s a character: # sound, . silence (for a failure)."""
        import numpy as np

        data = np.fromfile(self.sound.out, dtype="<i2")[-int(seconds * 22050) :]
        block = 2205
        peaks = np.abs(data[: len(data) // block * block].astype(np.int32).reshape(-1, block)).max(axis=1)
        return "".join("#" if peak > 64 else "." for peak in peaks)

    def seen(self, text: str, timeout: float = PATIENCE) -> str:
        """A line of this process's log with ``text``, whenever it came."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.daemon.log):
            assert time.monotonic() < deadline, f"no {text!r} in {timeout} s (seed {self.seed}):\n{''.join(self.daemon.log)}"
            time.sleep(0.02)
        return next(line for line in self.daemon.log if text in line)

    def _wait_any(self, texts: list[str], timeout: float = PATIENCE) -> str:
        """The next log line of this process (after the last one found) with one of ``texts``."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.daemon.log
            for index in range(self.cursor, len(log)):
                if any(text in log[index] for text in texts):
                    self.cursor = index + 1
                    return log[index]
            assert time.monotonic() < deadline, f"none of {texts} in {timeout} s (seed {self.seed}):\n{''.join(log)}"
            time.sleep(0.02)


@pytest.mark.slow
def test_the_daemon_killed_at_random_moments_comes_back_in_the_same_phase_with_the_time_and_the_notes(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("POWERCUT_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"power cut seed {seed} (POWERCUT_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    began = time.monotonic()
    cuts = PowerCuts(tmp_path, rng, seed)
    daemon = cuts.start()
    try:
        daemon.expect("say [gestures]", timeout=PATIENCE)
        cuts.advance()  # the session starts
        for phase in range(1, 8):
            assert cuts.phase == phase
            cuts.timed_cuts(rng.randint(5, 6))
            if phase in NOTE_PHASES:
                cuts.note(NOTE_PHASES[phase])
                cuts.timed_cuts(1)
            if phase == 7:
                cuts.timed_cuts(max(0, 50 - len(cuts.cuts)))  # at least 50, whatever the draws were
            cuts.advance()
        # The record and report (written by this process, or by the one the last cut stopped).
        deadline = time.monotonic() + PATIENCE
        while not list((cuts.data / "reports").glob("*.md")) or (cuts.data / "current.jsonl").exists():
            assert time.monotonic() < deadline, (
                f"no record and report (seed {seed}): {sorted(str(p.relative_to(cuts.data)) for p in cuts.data.rglob('*'))}"
                + "".join(cuts.daemon.log)
            )
            time.sleep(0.1)
        cuts.daemon.key("q")
        assert cuts.daemon.finish(timeout=30) == 0
        cuts.logs.extend(cuts.daemon.log)
    finally:
        if cuts.daemon.proc.poll() is None:
            cuts.daemon.proc.kill()
        cuts.mic.close()

    kinds: dict[str, int] = {}
    for cut in cuts.cuts:
        kinds[cut.kind] = kinds.get(cut.kind, 0) + 1
    errors = [c.error for c in cuts.cuts if c.error is not None]
    torn = [c.torn for c in cuts.cuts if c.torn]
    print(
        f"{len(cuts.cuts)} power cuts in {time.monotonic() - began:.0f} s ({cuts.incarnations} daemon processes): "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + f"; time left after a restart off by at most {max(errors):.3f} s (median {sorted(errors)[len(errors) // 2]:.3f}); "
        + f"torn last lines: {len(torn)} ({'; '.join(torn) or 'none'})"
    )
    assert len(cuts.cuts) >= 50
    assert sum(n for k, n in kinds.items() if "leervraag" in k or "actieplan" in k) >= 6

    records = sorted((cuts.data / "records").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["finished"] and [p["number"] for p in record["phases"]] == list(range(1, 8))
    for kind in NOTE_PHASES.values():
        kept = [item for item in record["captures"].get(kind, []) if item["accepted"]]
        assert len(kept) == 1, f"exactly one kept {kind} (seed {seed})"
        assert len(f"Ik heb genoteerd: {kept[0]['text']}.") == cuts.heard_chars[kind], "the one the group kept"
    log = "".join(cuts.logs)
    assert not HANGUL.search(log), "what the group said never reaches the log"


@pytest.mark.slow  # the daemon as a process, twice
def test_a_crash_inside_a_c_library_leaves_every_threads_stack_in_the_log_and_the_next_start_resumes(
    tmp_path: Path, alsa_files: Any
) -> None:
    """A segmentation fault (in espeak-ng, PortAudio or Vosk) ends the process at once. The
    Pi owner finds in the journal where each thread was, and systemd's restart goes on with
    the session."""
    from tests.support import Daemon as Process

    with Process(tmp_path, "--speed", "60") as daemon:
        daemon.expect("say [gestures]")
        daemon.key("")
        daemon.expect("say [phase]")
        daemon.proc.send_signal(signal.SIGSEGV)
        assert daemon.finish() == -signal.SIGSEGV
        log = "".join(daemon.log)
        assert "Fatal Python error: Segmentation fault" in log, log
        assert "Current thread" in log and 'File "' in log, "the Python stack of each thread"
    with Process(tmp_path, "--speed", "60") as again:
        assert "inventarisatie" in again.expect("say [resumed]")
        again.key("q")
        assert again.finish() == 0
