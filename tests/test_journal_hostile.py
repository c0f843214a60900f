"""A hostile or careless journal, data folder or clock: one clear line, and nothing lost.

What the daemon reads back at start (``current.jsonl``) is treated as hostile: a session id
that is not one, JSON nested 100,000 deep, a file of a gigabyte, a FIFO or a link. The data
folder may not be writable, a record's file name may be blocked, and a Pi without network
time may start with its clock behind the journal's. Each test shows what the group notices
(what the device says, what is kept on disk, what is left alone) and fails without the fix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PROJECT, Daemon, Device

from assistant.core.clock import FakeClock
from assistant.core.events import Press
from assistant.storage.journal import MAX_JOURNAL_BYTES, MAX_JOURNAL_LINES
from assistant.storage.records import is_session_id, record_paths

MIN = 60.0
WALL = 1_800_000_000.0
GREETING = "Hallo, ik ben klaar voor de intervisie."
RESUMED = "Ik was even uitgevallen."
STORAGE_FAILED = "Ik kan de sessie nu niet opslaan. Ik onthoud alles en houd de tijd gewoon bij."
STORAGE_OK = "Opslaan lukt weer. Er is niets verloren gegaan."


@pytest.fixture
def clocks() -> tuple[FakeClock, FakeClock]:
    return FakeClock(1000.0), FakeClock(WALL)


def restart(data: Path, clocks: tuple[FakeClock, FakeClock], off_for: float = 30.0) -> Device:
    """The power came back after ``off_for`` seconds of wall time (negative: the clock went back)."""
    mono, wall = clocks
    wall.advance(off_for)
    mono.advance(abs(off_for) + 3.0)
    return Device(data, mono, wall)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


def session_id_at(wall: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(wall))


def a_running_journal(data: Path, clocks: tuple[FakeClock, FakeClock]) -> bytes:
    """A session in phase 2 with its journal on disk (the power then goes)."""
    device = Device(data, *clocks)
    device.do(Press())
    device.wait(2 * MIN)
    device.do(Press())
    device.wait(MIN)
    return (data / "current.jsonl").read_bytes()


def with_header(journal: bytes, **changes: Any) -> bytes:
    first, rest = journal.split(b"\n", 1)
    header = {**json.loads(first), **changes}
    return json.dumps(header).encode() + b"\n" + rest


# ---------------------------------------------------------------------------------------
# 5. The session id in the journal is a file name
# ---------------------------------------------------------------------------------------

BAD_IDS = ["../../escaped", "a\0b", "", "sub/dir", "x" * 300, "20270115-090000/../../../x", "\x1b[31mred", 5, None]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=[ascii(i)[:20] for i in BAD_IDS])
def test_a_session_id_that_is_not_one_is_kept_under_a_new_id_inside_the_data_folder(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture, bad_id: Any
) -> None:
    data = tmp_path / "a" / "b" / "data"
    journal = a_running_journal(data, clocks)
    (data / "current.jsonl").write_bytes(with_header(journal, id=bad_id))
    with caplog.at_level(logging.WARNING):
        again = restart(data, clocks)  # an id with a NUL used to crash here, at every start
    assert again.speaker.said[0].startswith(RESUMED), "the session goes on, with its notes"
    assert again.session.current is not None and again.session.current.phase.number == 2
    warnings = [r.getMessage() for r in caplog.records if "is not a session id" in r.getMessage()]
    assert len(warnings) == 1 and "\0" not in warnings[0] and "\x1b" not in warnings[0]
    # The header on disk has the new id: a second power cut resumes it under that id too.
    header = json.loads((data / "current.jsonl").read_bytes().split(b"\n", 1)[0])
    assert is_session_id(header["id"])
    for minutes in (5, 10, 5, 10, 10, 5):
        again.wait(minutes * MIN)
        again.do(Press())
    [record] = record_paths(data)
    assert record.stem == header["id"]
    assert (data / "reports" / f"{header['id']}.md").exists()
    assert files_under(tmp_path) <= files_under(data), "nothing was written outside the data folder"


def test_a_record_whose_name_is_blocked_is_kept_under_the_next_id_and_later_sessions_are_saved(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    caplog.set_level(logging.WARNING)
    device = Device(data, *clocks)
    device.do(Press())
    first_id = device.daemon.session_id
    # While the session runs, a folder appears where its record is to go.
    blocked = data / "records" / f"{first_id}.json"
    blocked.mkdir()
    (blocked / "someone's file").write_text("not the assistant's")
    for minutes in (5, 5, 10, 5, 10, 10, 5):
        device.wait(minutes * MIN)
        device.do(Press())
    device.wait(MIN)
    second_started = device.wall.t
    # The second session's report name is blocked too.
    (data / "reports" / f"{session_id_at(second_started)}.md").mkdir(parents=True)
    device.whole_session()
    device.wait(MIN)
    device.whole_session()
    kept = [p.stem for p in record_paths(data)]
    assert kept == [f"{first_id}-2", session_id_at(second_started), kept[2]], "every session's record is on disk"
    assert (data / "reports" / f"{kept[2]}.md").exists(), "a blocked report does not hold up the next one"
    assert (data / "reports" / f"{first_id}-2.md").exists()
    assert (blocked / "someone's file").read_text() == "not the assistant's"
    assert STORAGE_FAILED not in device.speaker.said, "the disk works: the group is not told it does not"
    assert not device.daemon.store.down
    assert "cannot be written (Is a directory): the session is kept as" in caplog.text


# ---------------------------------------------------------------------------------------
# 7. JSON nested 100,000 deep
# ---------------------------------------------------------------------------------------

DEEP = b'{"event":"press","t":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("where", ["the header", "a later line"])
def test_json_nested_100000_deep_in_the_journal_is_a_damaged_line_not_a_crash(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    data = tmp_path / "data"
    journal = a_running_journal(data, clocks)
    lines = journal.splitlines(keepends=True)
    if where == "the header":
        lines[0] = DEEP + b"\n"
    else:
        lines.append(DEEP + b"\n")
    (data / "current.jsonl").write_bytes(b"".join(lines))
    again = restart(data, clocks)  # it used to stop here with a RecursionError, at every start
    if where == "the header":
        assert again.speaker.said[0].startswith(GREETING)
        assert "has no valid header" in caplog.text
    else:
        assert again.speaker.said[0].startswith(RESUMED)
        assert again.session.current is not None and again.session.current.phase.number == 2
        assert "is damaged" in caplog.text


# ---------------------------------------------------------------------------------------
# 8. A journal too large to be one the assistant wrote
# ---------------------------------------------------------------------------------------

GIGABYTE = 1 << 30


def test_a_journal_of_a_gigabyte_is_not_read_but_set_aside_with_one_line(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    journal = a_running_journal(data, clocks)
    with open(data / "current.jsonl", "r+b") as handle:
        handle.truncate(GIGABYTE)  # sparse: the test needs no gigabyte of disk
        handle.seek(GIGABYTE - len(journal))
        handle.write(journal)
    started = time.monotonic()
    again = restart(data, clocks)
    took = time.monotonic() - started
    assert again.speaker.said[0].startswith(GREETING)
    [aside] = data.glob("journal-set-aside-*.jsonl")
    assert aside.stat().st_size == GIGABYTE, "the file is kept whole: it may hold a session"
    assert not (data / "current.jsonl").exists()
    lines = [r.getMessage() for r in caplog.records if "more than a session writes" in r.getMessage()]
    assert len(lines) == 1 and str(aside) in lines[0]
    assert took < 5, f"start-up took {took:.1f} s"
    # The next session is journaled as usual, and the set-aside file is left alone.
    again.do(Press())
    assert (data / "current.jsonl").stat().st_size < 10_000
    assert aside.stat().st_size == GIGABYTE


def test_a_journal_of_a_gigabyte_costs_the_start_no_memory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with open(data / "current.jsonl", "wb") as handle:
        handle.write(b'{"journal":1,"id":"20270115-090000","wall":1800000000,"t":0}\n')
        handle.truncate(GIGABYTE)
    script = (
        "import sys; from pathlib import Path\n"
        "from assistant.storage.journal import Journal\n"
        "try:\n    Journal(Path(sys.argv[1])).pending()\nexcept OSError as exc:\n    print(exc)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (pytest,
        # large after the model tests), while VmHWM belongs to this program alone.
        "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')) // 1024)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script, str(data)], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120, check=True)
    took = time.monotonic() - started
    said, peak_mb = done.stdout.splitlines()
    print(f"a 1 GiB journal: read back in {took:.2f} s, peak RSS {peak_mb} MB")
    assert "more than a session writes" in said
    assert int(peak_mb) < 150, f"peak memory {peak_mb} MB"


def test_a_journal_of_too_many_lines_is_set_aside(tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    journal = a_running_journal(data, clocks)
    flood = journal + b'{"event":"tick","t":1,"wall":1}\n' * MAX_JOURNAL_LINES
    assert len(flood) < MAX_JOURNAL_BYTES
    (data / "current.jsonl").write_bytes(flood)
    again = restart(data, clocks)
    assert again.speaker.said[0].startswith(GREETING)
    [aside] = data.glob("journal-set-aside-*.jsonl")
    assert aside.read_bytes() == flood
    assert f"more than {MAX_JOURNAL_LINES:,} lines" in caplog.text


# ---------------------------------------------------------------------------------------
# 9. Only a regular file is read
# ---------------------------------------------------------------------------------------


@pytest.fixture
def fifo_journal(tmp_path: Path) -> Iterator[Path]:
    """``current.jsonl`` as a FIFO nobody writes to; unblocks a reader stuck on it afterwards."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    fifo = data / "current.jsonl"
    os.mkfifo(fifo, 0o600)
    yield fifo
    if fifo.exists() and stat.S_ISFIFO(fifo.lstat().st_mode):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # an opener stuck on it returns
        except OSError:
            pass


def test_a_fifo_as_the_journal_never_blocks_the_start(fifo_journal: Path, clocks) -> None:
    started: list[Device] = []
    thread = threading.Thread(target=lambda: started.append(Device(fifo_journal.parent, *clocks)), daemon=True)
    thread.start()
    thread.join(10)
    assert started, "the start blocked on the FIFO"
    assert started[0].speaker.said[0].startswith(GREETING)
    started[0].do(Press())
    assert stat.S_ISREG(fifo_journal.lstat().st_mode), "the new session's journal is a regular file"


@pytest.mark.slow
def test_the_daemon_with_a_fifo_as_its_journal_greets_and_stops_on_sigterm(fifo_journal: Path) -> None:
    daemon = Daemon(fifo_journal.parent.parent, "--speed", "60")
    try:
        daemon.expect("say [ready]: " + GREETING, timeout=30)
        assert any("is a FIFO, not a regular file: it is not read" in line for line in daemon.log)
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.finish(timeout=10) == 0
    finally:
        daemon.proc.kill()
        daemon.finish()
    assert "Traceback" not in "".join(daemon.log)


def test_a_link_as_the_journal_is_not_followed_and_its_target_is_left_alone(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    journal = a_running_journal(data, clocks)
    target = tmp_path / "someone-elses.jsonl"
    target.write_bytes(journal)
    before = target.stat()
    (data / "current.jsonl").unlink()
    (data / "current.jsonl").symlink_to(target)
    again = restart(data, clocks)
    assert again.speaker.said[0].startswith(GREETING), "a journal outside the data folder is not resumed"
    assert "is a symbolic link" in caplog.text
    again.do(Press())
    again.wait(MIN)
    again.do(Press())
    assert stat.S_ISREG((data / "current.jsonl").lstat().st_mode)
    assert target.read_bytes() == journal and target.stat().st_mtime_ns == before.st_mtime_ns
    assert record_paths(data) == []


# ---------------------------------------------------------------------------------------
# 13. The clock went back (a Pi without network time)
# ---------------------------------------------------------------------------------------


def test_a_journal_ahead_of_the_clock_is_kept_unfinished_not_resumed(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    a_running_journal(data, clocks)
    # fake-hwclock restores the time saved an hour before the power cut.
    again = restart(data, clocks, off_for=-3600)
    assert again.speaker.said[0].startswith(GREETING), "the time off is unknown: not resumed as if it were none"
    assert again.session.current is None
    [path] = record_paths(data)
    record = json.loads(path.read_text())
    assert record["finished"] is False
    assert [p["number"] for p in record["phases"]] == [1, 2]
    assert not (data / "current.jsonl").exists()
    lines = [r.getMessage() for r in caplog.records if "behind" in r.getMessage()]
    assert len(lines) == 1 and "3540 s behind" in lines[0]  # the last event was a minute before the cut


def test_a_clock_a_second_behind_still_resumes(tmp_path: Path, clocks) -> None:
    data = tmp_path / "data"
    a_running_journal(data, clocks)
    again = restart(data, clocks, off_for=-1)  # a small step of the time service
    assert again.speaker.said[0].startswith(RESUMED)


# ---------------------------------------------------------------------------------------
# 4. A data folder the assistant may not write to
# ---------------------------------------------------------------------------------------


def test_a_data_folder_that_cannot_be_made_is_said_at_the_first_press_and_saved_once_it_can(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")  # ENOTDIR, as a careless setting gives
    data = blocker / "data"
    device = Device(data, *clocks)  # it used to give up here: nothing kept, nobody told
    assert device.speaker.said[0].startswith(GREETING)
    device.do(Press())
    device.wait(MIN)
    device.do(Press())
    assert device.speaker.said.count(STORAGE_FAILED) == 1
    assert device.session.current is not None and device.session.current.phase.number == 2
    assert len([r for r in caplog.records if "cannot save the session" in r.getMessage()]) == 1
    blocker.unlink()
    blocker.mkdir()
    assert device.daemon.store.retry()
    assert [json.loads(line)["event"] for line in (data / "current.jsonl").read_text().splitlines()[1:]] == [
        "press", "press"
    ]
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


NOBODY = 65534


@pytest.fixture
def foreign() -> Iterator[Path]:
    """A folder ``nobody`` can enter, for a daemon run as ``nobody`` (pytest's tmp_path is root's only)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("this test runs the daemon as another user, which needs root and setpriv (CI has both)")
    base = Path(tempfile.mkdtemp(prefix="intervisie-foreign-"))
    base.chmod(0o755)
    (base / "home").mkdir(mode=0o755)
    config = base / "config.toml"
    config.write_text(f'data_dir = "{base / "data"}"\nparticipants = 0\n[listening]\nenabled = false\n')
    config.chmod(0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def as_nobody(base: Path) -> Daemon:
    return Daemon(base, "--speed", "60", env={"HOME": str(base / "home")},
                  wrapper=["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"])


@pytest.mark.slow
def test_a_journal_it_may_not_read_is_set_aside_not_deleted(foreign: Path) -> None:
    data = foreign / "data"
    data.mkdir(mode=0o700)
    os.chown(data, NOBODY, NOBODY)
    journal = data / "current.jsonl"
    journal.write_bytes(b'{"journal":1,"id":"20270115-090000","wall":1800000000,"t":0}\n')
    journal.chmod(0o600)  # root's, as `sudo intervisie run` leaves it
    daemon = as_nobody(foreign)
    try:
        daemon.expect("say [ready]: " + GREETING, timeout=30)
        assert any("cannot read the journal" in line and "Permission denied" in line for line in daemon.log)
        daemon.key("")
        daemon.expect("that could not be read was set aside as", timeout=10)
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        daemon.proc.kill()
        daemon.finish()
    [aside] = data.glob("journal-set-aside-*.jsonl")
    assert aside.stat().st_uid == 0 and aside.read_bytes().startswith(b'{"journal":1,"id":"20270115-090000"')
    assert (data / "current.jsonl").stat().st_uid == NOBODY, "the new session has a journal of its own"


@pytest.mark.slow
def test_a_data_folder_owned_by_root_is_said_once_and_saved_when_it_becomes_writable(foreign: Path) -> None:
    """The daemon runs as ``nobody`` on a folder root made; root then hands it over."""
    data = foreign / "data"
    data.mkdir(mode=0o755)  # root's: the assistant may read it, not write to it
    daemon = as_nobody(foreign)
    try:
        daemon.expect("say [ready]: ", timeout=30)
        daemon.key("")
        daemon.expect("say [storage_failed]: " + STORAGE_FAILED, timeout=10)
        os.chown(data, NOBODY, NOBODY)  # the administrator hands the folder over
        daemon.expect("say [storage_ok]: " + STORAGE_OK, timeout=10)
        header = json.loads((data / "current.jsonl").read_text().splitlines()[0])
        assert is_session_id(header["id"])
        assert (data / "current.jsonl").stat().st_uid == NOBODY
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        daemon.proc.kill()
        daemon.finish()
    log = "".join(daemon.log)
    assert log.count("cannot save the session") == 1 and "Traceback" not in log
