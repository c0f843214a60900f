"""A full, read-only or failing data disk: the device says so once, goes on, and loses nothing.

The real daemon process runs in a private mount namespace (``unshare -m``) in which a
small tmpfs is mounted over its data directory, so nothing of it is seen outside the
test. The test fills that disk up, frees it, or remounts it read-only and read-write
again, all from outside the daemon: through ``/proc/<pid>/root`` (which shows the
daemon's own mounts) and ``nsenter``. Mounting needs root; CI runs as root.

What the group hears is in the daemon's log (every ``say [key]: text`` line is what went
to the file sound card, see test_run.py); after the disk works again the journal is
copied out and a second daemon resumes from it, to show nothing was lost.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import PROJECT, Daemon, read_journal, time_left_error

pytestmark = pytest.mark.slow  # the daemon as a process in a mount namespace (root)

SPEED = 60.0
SIZE = "256k"
"""The tmpfs: room for a session's journal, record and report, and little else."""
RETRY = 2.0
"""How often the daemon tries a failing disk again (real seconds)."""

MOUNT = """\
set -e
data="$1"; size="$2"; full="$3"; shift 3
mount -t tmpfs -o "size=$size,mode=0700" intervisie-test "$data"
if [ "$full" = yes ]; then
    dd if=/dev/zero of="$data/filler" bs=4096 2>/dev/null || true
fi
exec "$@"
"""


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the data disk tests mount a small tmpfs in a private mount namespace, which needs root: "
            "run them as root (CI does), e.g. sudo ./run-tests tests/test_disk.py"
        )


class DiskDaemon(Daemon):
    """``intervisie run`` on a data directory of its own: a tmpfs that only it sees."""

    def __init__(self, tmp_path: Path, full: bool = False) -> None:
        self.data = tmp_path / "data"
        self.data.mkdir(mode=0o700, exist_ok=True)
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            f'data_dir = "{self.data}"\nparticipants = 0\n'
            f'[schedule]\nmode = "fixed"\n'
            f'[listening]\nmodel = "{tmp_path / "no-model"}"\n'
        )
        script = tmp_path / "mount-data.sh"
        script.write_text(MOUNT)
        self.proc = subprocess.Popen(
            [
                "unshare", "--mount", "--propagation", "private", "sh", str(script), str(self.data), SIZE,
                "yes" if full else "no", sys.executable, "-m", "assistant", "run", "--config", str(self.config),
                "--speed", str(SPEED),
            ],
            cwd=PROJECT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "GPIOZERO_PIN_FACTORY": ""},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def disk(self) -> Path:
        """The data directory as the daemon sees it (its tmpfs)."""
        return Path(f"/proc/{self.proc.pid}/root") / self.data.relative_to("/")

    def fill(self) -> None:
        """Fill the disk up to the last byte."""
        with open(self.disk / "filler", "ab", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == 28, exc  # ENOSPC

    def free(self) -> None:
        (self.disk / "filler").unlink()

    def remount(self, mode: str) -> None:
        """Remount the data disk ``ro`` or ``rw`` (a write in flight makes it busy: try again)."""
        for _ in range(50):
            done = subprocess.run(
                ["nsenter", "-t", str(self.proc.pid), "-m", "mount", "-o", f"remount,{mode}", str(self.data)],
                capture_output=True, text=True,
            )
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"cannot remount {mode}: {done.stderr}")

    def seen(self, text: str, timeout: float = 20) -> str:
        """The first log line so far (or within ``timeout``) containing ``text``, in any order."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.log):
            assert time.monotonic() < deadline, f"no log line with {text!r} in {timeout} s; log:\n{''.join(self.log)}"
            time.sleep(0.02)
        return next(line for line in self.log if text in line)

    def said(self, key: str) -> list[str]:
        """The texts said with this phrase key so far."""
        return [line.split(f"say [{key}]: ", 1)[1].strip() for line in self.log if f"say [{key}]: " in line]

    def copy_data(self, to: Path) -> Path:
        """A copy of the data directory as it is on the daemon's disk now (modes kept)."""
        shutil.copytree(self.disk, to, ignore=shutil.ignore_patterns("filler"))
        return to

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.finish()


WARNING_NL = "Ik kan de sessie nu niet opslaan. Ik onthoud alles en houd de tijd gewoon bij."
BACK_NL = "Opslaan lukt weer. Er is niets verloren gegaan."


def _errors(daemon: Daemon) -> list[str]:
    return [line for line in daemon.log if "cannot save the session" in line]


def _resume_from(tmp_path: Path, data: Path, phase: int) -> float:
    """Start a normal daemon on a copy of the data: it resumes ``phase``; returns the time error."""
    config = tmp_path / "resume.toml"
    config.write_text(f'data_dir = "{data}"\nparticipants = 0\n[schedule]\nmode = "fixed"\n'
                      f'[listening]\nmodel = "{tmp_path / "no-model"}"\n')
    again = Daemon(tmp_path, "--config", str(config), "--speed", str(SPEED))
    try:
        line = again.expect("resumed session", timeout=30)
        assert any("say [resumed]: Ik was even uitgevallen." in said for said in again.log)
        entries = read_journal(data / "current.jsonl")
        started = [e for e in entries if e.get("event") == "press"][-1]["wall"]
        return time_left_error(line, entries, SPEED, phase, started)
    finally:
        again.proc.kill()
        again.finish()


def test_a_full_disk_mid_session_is_said_once_and_everything_is_saved_when_space_is_freed(tmp_path: Path) -> None:
    daemon = DiskDaemon(tmp_path)
    try:
        daemon.expect("say [gestures]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.fill()
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        # The journal's last block still had room (a full disk takes appends until then):
        # the group pauses and goes on until a line does not fit.
        for _ in range(80):
            daemon.key("p")
            daemon.expect("say [paused]")
            daemon.key("p")
            daemon.expect("say [unpaused]")
            if _errors(daemon):
                break
        error = _errors(daemon)[0]
        assert "No space left on device" in error and "keeps everything in memory" in error
        assert daemon.seen("say [storage_failed]").strip().endswith(WARNING_NL)
        on_disk = (daemon.disk / "current.jsonl").read_bytes()
        daemon.key("")
        daemon.expect("say [phase]: Fase 3:")
        daemon.expect("say [halfway]", timeout=15)  # 5 session minutes: the clock goes on
        time.sleep(2.5 * RETRY)  # retries fail quietly
        assert len(daemon.said("storage_failed")) == 1 and len(_errors(daemon)) == 1
        assert (daemon.disk / "current.jsonl").read_bytes() == on_disk, "nothing more fitted on the disk"
        daemon.free()
        back = daemon.expect("saving works again", timeout=3 * RETRY)
        assert "wrote what was missed (" in back
        assert daemon.expect("say [storage_ok]").strip().endswith(BACK_NL)
        entries = read_journal(daemon.disk / "current.jsonl")
        events = [e["event"] for e in entries if e.get("event") in ("press", "long_press")]
        pauses = sum("say [paused]" in line for line in daemon.log)
        assert events == ["press", "press", *["long_press"] * (2 * pauses), "press"], (
            "every event of the outage is in the journal, in order"
        )
        assert len(entries) > on_disk.count(b"\n")
        copy = daemon.copy_data(tmp_path / "copy")
        assert len(daemon.said("storage_failed")) == 1
    finally:
        daemon.kill()
    assert stat.S_IMODE((copy / "current.jsonl").stat().st_mode) == 0o600
    error = _resume_from(tmp_path, copy, phase=3)
    print(f"resumed from the journal written after the outage: time left off by {error:.3f} s")
    assert error <= 1.0


def test_a_read_only_disk_mid_session_keeps_the_finished_session_until_it_is_writable_again(tmp_path: Path) -> None:
    daemon = DiskDaemon(tmp_path)
    try:
        daemon.expect("say [gestures]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.remount("ro")
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        assert "Read-only file system" in daemon.seen("cannot save the session")
        daemon.seen("say [storage_failed]")
        for number in range(3, 8):
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number}:")
        daemon.expect("say [left]", timeout=15)  # phase 7's last minute: timing went on
        daemon.key("")
        daemon.expect("say [summary]")  # the session ends while nothing can be written
        time.sleep(1.5 * RETRY)
        assert not list((daemon.disk / "records").glob("*.json")), "read-only: no record yet"
        assert len(daemon.said("storage_failed")) == 1 and len(_errors(daemon)) == 1
        daemon.remount("rw")
        back = daemon.expect("saving works again", timeout=3 * RETRY)
        assert "1 records" in back
        daemon.expect("say [storage_ok]")
        daemon.seen("report of session", timeout=5)
        records = list((daemon.disk / "records").glob("*.json"))
        assert len(records) == 1
        record = json.loads(records[0].read_text())
        assert record["finished"] and [p["number"] for p in record["phases"]] == list(range(1, 8))
        assert all(p["actual_seconds"] > 0 for p in record["phases"])
        assert (daemon.disk / "reports" / f"{record['id']}.md").exists()
        assert not (daemon.disk / "current.jsonl").exists(), "the finished session's journal went"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [records[0], records[0].parent, daemon.disk]}
        assert set(modes.values()) <= {0o600, 0o700} and modes["records"] == 0o700
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        daemon.kill()


def test_a_disk_full_from_the_start_is_said_at_the_first_press_and_saved_once_there_is_room(tmp_path: Path) -> None:
    daemon = DiskDaemon(tmp_path, full=True)
    try:
        daemon.expect("say [gestures]")
        assert not _errors(daemon), "nothing to save before the session starts"
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        assert "No space left on device" in daemon.seen("cannot save the session")
        daemon.seen("say [storage_failed]")
        assert not (daemon.disk / "current.jsonl").exists()
        daemon.expect("say [left]", timeout=15)  # "Nog 1 minuut." in phase 1: timing goes on
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        daemon.free()
        daemon.expect("saving works again", timeout=3 * RETRY)
        daemon.expect("say [storage_ok]")
        copy = daemon.copy_data(tmp_path / "copy")
        assert len(daemon.said("storage_failed")) == 1 and len(_errors(daemon)) == 1
    finally:
        daemon.kill()
    assert _resume_from(tmp_path, copy, phase=2) <= 1.0
