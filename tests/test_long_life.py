"""Months on a meeting table: hundreds of sessions in one process leak nothing.

The daemon runs 200 whole sessions back to back with its real speaker (pyttsx3 and
espeak-ng, played through PortAudio into the file sound card), its real journal and
reports on disk, and a fast session clock. The test is the button: it gives the daemon
the presses a group gives, as quickly as the daemon takes them, so every phase is
announced and cut short by the next press, as when a group knows the method well.

Memory (resident set), open file descriptors and threads are read after each of the 20
sessions that follow the first 20 (by then everything that is made once has been made),
and after each of the last 20. They must stay flat. One reading of the resident set moves
by up to 3 MB with the audio that happens to be in flight, so the medians of the two sets
of readings are compared. The figures are printed (``./run-tests tests/test_long_life.py -s``).

The absolute size is not judged here: it depends on the Python build (Debian's 3.11 keeps
about 5 MB more than a pyenv build of the same version). The benchmark measures it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.audio.speaker import AudioSpeaker
from assistant.config import load_method, load_phrases
from assistant.core.clock import SessionClock
from assistant.core.events import ButtonDown, Press, Tick
from assistant.core.session import IDLE
from assistant.core.settings import ListeningSettings, Settings
from assistant.memory import fewer_malloc_arenas
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal

pytestmark = pytest.mark.slow  # hundreds of sessions in one process

SESSIONS = 200
WARM_UP = 20
READINGS = 20
"""Readings at the start (after the warm-up) and at the end."""
MAX_RSS_GROWTH_MB = 4.0
"""Room for the allocator's own fragmentation (about 0.5 MB was measured); a leak of one
phrase's audio (~0.3 MB) per session would grow by 50 MB between the two sets of readings,
one of 25 kB per session by 4 MB."""


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def one_session(daemon: Daemon, speaker: AudioSpeaker) -> None:
    """Start, press through all seven phases, and finish: as the button would."""
    assert daemon.session.status == IDLE
    for _ in range(8):  # start (phase 1), then phases 2-7, then the end
        daemon.step(ButtonDown())
        daemon.step(Press())
        time.sleep(0.003)  # the announcement starts playing before the next press
        daemon.step(Tick())
    assert daemon.session.status == IDLE, "the eighth press ends the session"
    # Texts that are not prepared (the summary with its times) render when they are said,
    # and a rendering is not dropped when a press cuts the speech. No group presses eight
    # times in 30 ms: wait here until what this session said is rendered (an urgent
    # rendering waits for the ones before it), or the renderings of hundreds of sessions
    # would pile up in the queue.
    speaker.renderer.render("klaar")


def run_sessions(data: Path) -> dict[str, object]:
    """Run the sessions in this process; the figures, for the test to judge."""
    fewer_malloc_arenas()  # as `intervisie run` does
    settings = Settings(data_dir=str(data), participants=0, listening=ListeningSettings(enabled=False))
    speaker = AudioSpeaker(settings.speech, settings.language)
    journal = Journal(settings.data_path())
    daemon = Daemon(
        settings,
        load_method(settings.method, settings.language),
        load_phrases(settings.language),
        speaker,
        journal,
        SessionClock(600.0),
    )
    figures: dict[int, tuple[float, int, int]] = {}
    try:
        daemon.start_up()
        started = time.monotonic()
        for number in range(1, SESSIONS + 1):
            one_session(daemon, speaker)
            if WARM_UP < number <= WARM_UP + READINGS or number > SESSIONS - READINGS:
                speaker.stop()
                time.sleep(0.2)  # the player's thread settles after the cut
                figures[number] = (resident_mb(), open_fds(), threading.active_count())
        elapsed = time.monotonic() - started
    finally:
        speaker.close()
    return {
        "elapsed": elapsed,
        "figures": {str(k): v for k, v in figures.items()},
        "finished_records": len(daemon.finished_records),
        "spoken": len(daemon.spoken),
    }


def test_two_hundred_sessions_in_one_process_keep_memory_files_and_threads_flat(tmp_path: Path, alsa_files) -> None:
    # A process of its own: the tests' process holds Vosk models and whatever earlier tests
    # left, and its memory moves with them.
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", __file__, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    figures = {int(k): tuple(v) for k, v in result["figures"].items()}
    elapsed = result["elapsed"]
    records = sorted((tmp_path / "data" / "records").glob("*.json"))
    reports = sorted((tmp_path / "data" / "reports").glob("*.md"))
    print(f"\n{SESSIONS} sessions in {elapsed:.1f} s ({elapsed / SESSIONS * 1000:.0f} ms each)")
    first = [figures[n] for n in range(WARM_UP + 1, WARM_UP + READINGS + 1)]
    last = [figures[n] for n in range(SESSIONS - READINGS + 1, SESSIONS + 1)]
    rss_start = statistics.median(rss for rss, _, _ in first)
    rss_end = statistics.median(rss for rss, _, _ in last)
    fds_start, threads_start = max(f for _, f, _ in first), max(t for _, _, t in first)
    fds_end, threads_end = max(f for _, f, _ in last), max(t for _, _, t in last)
    for name, readings in (("first", first), ("last", last)):
        print(f"resident after each of the {name} {READINGS} (MB):", " ".join(f"{r:.1f}" for r, _, _ in readings))
    span = f"sessions {WARM_UP + 1}-{WARM_UP + READINGS} against {SESSIONS - READINGS + 1}-{SESSIONS}"
    print(f"median resident, {span}: {rss_start:.1f} MB, {rss_end:.1f} MB ({rss_end - rss_start:+.1f} MB)")
    print(f"most open files: {fds_start}, {fds_end}; most threads: {threads_start}, {threads_end}")

    assert len(records) == SESSIONS and len(reports) == SESSIONS, "every session was kept and reported"
    assert result["finished_records"] <= 10 and result["spoken"] <= 200, "what the daemon keeps in memory is bounded"
    assert fds_end == fds_start, "every session closes the files it opens"
    # Fewer is fine: the thread that prepares the phrases may still run after session 20.
    assert threads_end <= threads_start, "no thread is left behind per session"
    assert rss_end - rss_start < MAX_RSS_GROWTH_MB, f"memory grew {rss_end - rss_start:.1f} MB"


if __name__ == "__main__":
    print(json.dumps(run_sessions(Path(sys.argv[1]))))
