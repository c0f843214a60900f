"""A note through the real daemon process, heard by a real Vosk model.

``intervisie run`` runs as in test_run.py (keyboard as the button on stdin, a fast
clock), with its own ``HOME`` whose ``.asoundrc`` makes ALSA's file plugin its sound
card: what it says goes to ``out.raw``, and its microphone is ``in.raw``, a FIFO that
the test writes at real time, one stream block (0.1 s of int16 mono at 16 kHz) per
write (see test_listening.py for why a FIFO, and why written block by block). The
model is the Korean one from PyPI without dithering, and the speech is espeak-ng's
Korean, so the text the daemon keeps can be compared with what bare Vosk makes of the
very same samples.

To know exactly which samples the note's recogniser got, the test stops writing before
the press that invites the note (the daemon's microphone then waits in its read, so no
audio at all is captured while the device says the invitation and plays the tone), and
writes again only when the device has been quiet for longer than the mute margin. The
first block the note gets is then the first block of the test's clip. (This matters:
the text this model makes of espeak-ng's Korean changes with 0.1 s more or less of quiet
before the speech, observed.) The kernvraag and the actieplan are invited with the
microphone running all the time, as in a real room.
"""

from __future__ import annotations

import array
import collections
import fcntl
import json
import os
import re
import select
import stat
import termios
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from assistant.testing import filesound
from test_listening import BLOCK, RATE, Audio, join, no_dither_model, silence, speech
from test_run import Daemon

SPOKEN = "회의를 시작합니다"
"""The leervraag, in Korean ("the meeting begins"): no Dutch first-person word in it."""
SPEED = 6
"""Session clock speed: phase 2 would invite the note by itself only after 30 s."""
SILENCE_SECONDS = 1.0
WAIT_SECONDS = 7.0
"""How long the note waits for a first word (only open-microphone audio counts)."""
PATIENCE = 30.0
"""Longest wait for any log line."""
SPEAKER_RATE = 22050
"""The daemon's output stream rate on the file sound card (int16 mono)."""
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


def bare_vosk(model_path: Path, samples: Audio) -> tuple[str, list[dict[str, Any]]]:
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


class Microphone:
    """The daemon's ``in.raw`` as a FIFO, written at real time by a thread.

    Between clips it writes a quiet room (the same noise-floor block again and again);
    :meth:`hold` stops writing altogether, so the daemon captures nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR)  # a writer, so ALSA's open() of the FIFO never blocks
        self.quiet = silence(0.1).tobytes()
        self._lock = threading.Condition()
        self._clip: collections.deque[bytes] = collections.deque()
        self._quiet = True  # write the quiet room when no clip is queued
        self._busy = False  # a block is on its way into the FIFO
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="microphone", daemon=True)
        self._thread.start()

    def hold(self, timeout: float = 10.0) -> None:
        """Stop writing, and wait until the daemon has read everything written."""
        with self._lock:
            self._quiet = False
            assert self._lock.wait_for(lambda: not self._busy and not self._clip, timeout)
        deadline = time.monotonic() + timeout
        waiting = array.array("i", [0])
        while True:
            fcntl.ioctl(self.fd, termios.FIONREAD, waiting)
            if waiting[0] == 0:
                break
            assert time.monotonic() < deadline, "the daemon's microphone does not read"
            time.sleep(0.01)
        time.sleep(0.1)  # its callback runs right after the read

    def say(self, samples: Audio, timeout: float = 30.0) -> None:
        """Write these samples (whole blocks) at real time, then the quiet room again."""
        data = samples.astype("<i2").tobytes()
        assert len(data) % (2 * BLOCK) == 0
        with self._lock:
            self._clip.extend(data[i : i + 2 * BLOCK] for i in range(0, len(data), 2 * BLOCK))
            self._quiet = True
            self._lock.notify_all()
            assert self._lock.wait_for(lambda: not self._clip, timeout), "the daemon's microphone stopped reading"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(5)
        os.close(self.fd)

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._clip or self._quiet)
                if self._closed:
                    return
                from_clip = bool(self._clip)
                block = self._clip[0] if from_clip else self.quiet
                self._busy = True
            now = time.monotonic()
            due = max(due, now - 0.3)  # after a hold or a stall: no burst to catch up
            if due > now:
                time.sleep(due - now)
            _readable, writable, _errors = select.select([], [self.fd], [], 0.2)
            if writable:
                os.write(self.fd, block)  # 3200 bytes: atomic on a pipe
                due += 0.1
            with self._lock:
                if writable and from_clip:
                    self._clip.popleft()
                self._busy = False
                self._lock.notify_all()


def wait_until_quiet(out: Path, since: int, at_least: float, quiet: float = 0.8, timeout: float = PATIENCE) -> None:
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_leervraag_said_into_the_microphone_is_kept_in_the_record_and_report(tmp_path: Path) -> None:
    sound = filesound.write_asoundrc(tmp_path / "home")
    mic = Microphone(sound.inp)
    model = no_dither_model(tmp_path / "model")
    clip, heard_by_bare_vosk = spoken_note(mic, SPOKEN)
    over_the_device = join(silence(0.2), speech(SPOKEN), silence(0.2))
    pool = ThreadPoolExecutor(1)
    expected: Future[tuple[str, list[dict[str, Any]]]] = pool.submit(bare_vosk, model, heard_by_bare_vosk)
    pool.shutdown(wait=False)
    data = tmp_path / "data"
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{data}"\nparticipants = 0\n'
        f'[listening]\nmodel = "{model}"\n'
        f"silence_seconds = {SILENCE_SECONDS}\nwait_seconds = {WAIT_SECONDS}\nmax_seconds = 20\n"
    )
    daemon = Daemon(tmp_path, "--speed", str(SPEED), env={"HOME": str(sound.home)})
    try:
        daemon.expect("speech recognition: ready", timeout=60)
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        daemon.expect("say [note_hint]")

        # The leervraag: invited on a press, said when the device is quiet.
        spoken_at = say_when_invited(daemon, mic, sound.out, clip)
        line = daemon.expect("say [note_heard]")
        heard_after = time.monotonic() - spoken_at
        daemon.expect("say [note_first_person]")  # Korean has no "ik", "mij", "mijn"...
        daemon.key("")
        daemon.expect("say [note_saved]")

        daemon.key("")
        daemon.expect("say [phase]: Fase 3:")
        cpu_before, idle_from = cpu_seconds(daemon.proc.pid), time.monotonic()
        time.sleep(2.0)  # listening to a quiet room outside notes costs (almost) nothing
        idle_cpu = (cpu_seconds(daemon.proc.pid) - cpu_before) / (time.monotonic() - idle_from)

        # The kernvraag and the actieplan: invited with the microphone on all the time.
        # The kernvraag is said over the device's invitation (so it is not heard), the
        # actieplan not at all: both end after wait_seconds with nothing.
        for number in (4, 6):
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number}:")
            daemon.expect("say [note_hint]")
            daemon.key("")
            daemon.expect("say [note_invite]")
            if number == 4:
                mic.say(over_the_device)  # the invitation lasts about 5 s
            daemon.expect("say [note_nothing]")
            daemon.key("")  # once: go on without a note
            daemon.expect(f"say [phase]: Fase {number + 1}:")
            daemon.expect("say [note_running]")  # the ideas, the closing sentences: nothing said
        daemon.key("")
        daemon.expect("say [summary]")
        daemon.expect("saved to")
        daemon.expect("report of session")
        daemon.key("q")
        assert daemon.finish(timeout=30) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        mic.close()

    text, words = expected.result(60)
    assert text, "bare Vosk hears words in the speech"
    said = len(f"Ik heb genoteerd: {text}.")  # the locale's note_heard
    assert f"({said} characters of a note, not logged)" in line
    print(f"note heard {heard_after:.1f} s after the speech began; daemon CPU outside notes {idle_cpu:.0%}")
    assert idle_cpu < 0.5

    records = sorted((data / "records").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["finished"]
    leervraag = record["captures"]["leervraag"]
    assert [item["accepted"] for item in leervraag] == [True]
    item = leervraag[0]
    assert item["text"] == text, "the daemon heard exactly what bare Vosk hears in the same samples"
    assert item["words"] == words
    assert (item["phase"], item["attempt"], item["first_person"]) == (2, 1, False)
    assert not any(record["captures"].get(kind) for kind in ("kernvraag", "actieplan", "ideas", "takeaways"))

    markdown = (data / "reports" / f"{record['id']}.md").read_text()
    assert f"> {text}" in markdown.replace("(?)", "").replace("\\", "")
    report = json.loads((data / "reports" / f"{record['id']}.json").read_text())
    assert text in json.dumps(report, ensure_ascii=False)

    log = "".join(daemon.log)
    assert daemon.proc.stdout is not None
    log += daemon.proc.stdout.read()
    assert text not in log and not HANGUL.search(log), "what the group said never reaches the log"

    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    session = record["id"]
    assert modes == {
        ".": 0o700,
        "records": 0o700,
        f"records/{session}.json": 0o600,
        "reports": 0o700,
        f"reports/{session}.md": 0o600,
        f"reports/{session}.json": 0o600,
    }, "the finished session left its record and report, private, and no journal"
