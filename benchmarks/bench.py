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

from assistant import filesound  # noqa: E402  (the path is set just above)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument(
        "--file-sound", action="store_true", help="use ALSA's file plugin even when there is a sound card"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="intervisie-bench-"))
    try:
        sound = filesound.install(work / "sound") if args.file_sound or not _has_sound_card() else None
        results: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "python": platform.python_version(),
                "sound": "ALSA file plugin (no sound card)" if sound else "default sound card",
            }
        }
        _progress("press to first audio")
        results["press"] = bench_press(work, presses=14 if args.quick else 42)
        _progress("announcements against the schedule")
        results["schedule"] = bench_schedule(work, phases=2 if args.quick else 4)
        _progress("the daemon process")
        results["daemon"] = bench_daemon(work, sound, idle_seconds=10 if args.quick else 30)
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
    from assistant.clock import SessionClock
    from assistant.daemon import Daemon
    from assistant.events import ButtonDown, Press
    from assistant.method import load_method
    from assistant.phrases import load_phrases
    from assistant.settings import load_settings
    from assistant.speech import AudioSpeaker

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
    from assistant.clock import SessionClock
    from assistant.daemon import Daemon
    from assistant.events import Press, Tick
    from assistant.method import load_method
    from assistant.phrases import load_phrases
    from assistant.settings import load_settings
    from assistant.speech import AudioSpeaker

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


def _memory(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


# -------------------------------------------------------------------------- helpers


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
