"""The data folder is the assistant's own, and one daemon's at a time (issue 9, findings 1 and 3).

A ``data_dir`` that is shared (``/tmp``), another user's or a link is refused with one
line and left exactly as it was; only folders the assistant makes are set to 0700. A
second daemon on the same folder stops at once, naming the process that holds it, and
root does not run in another user's folder. The tests that need a second user (chown,
``setpriv``) need root, as CI has; they say so when run without it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PROJECT, Daemon

from assistant.cli import main
from assistant.errors import JournalError
from assistant.storage.files import FolderRefused, private_dir
from assistant.storage.journal import Journal
from assistant.storage.lock import FolderBusy, lock_data_folder
from assistant.storage.report import write_report

NOBODY = 65534
SESSION = "20270115-090000"


def record(session_id: str = SESSION) -> dict[str, object]:
    """A small finished record, as the daemon keeps it."""
    return {
        "id": session_id, "started_wall": 1_800_000_000.0, "ended_wall": 1_800_000_060.0, "method": "intervisie",
        "language": "nl", "finished": True, "phases": [], "captures": {},
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every entry under ``folder`` with its mode, owner, group and (for a file) its bytes."""
    out = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        info = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(info.st_mode) else b""
        out[str(path.relative_to(folder))] = (info.st_mode, info.st_uid, info.st_gid, data)
    return out


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "this test needs a second user (chown, setpriv), which needs root: run it as root (CI does), "
            "e.g. sudo ./run-tests tests/test_data_folder.py"
        )


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every user may enter (pytest's own are root's 0700), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="intervisie-folder-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def keep_a_session(data: Path) -> str:
    """Keep one session's record in ``data`` as the daemon does; the JournalError's text, or "".

    Whether the refusal comes when the journal opens or at its first write, nothing may be
    written or changed.
    """
    try:
        Journal(data).finish(record())  # type: ignore[arg-type]
    except JournalError as exc:
        return str(exc)
    return ""


def write_config(tmp_path: Path, data: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{data}"\nparticipants = 0\n[listening]\nmodel = "{tmp_path / "no-model"}"\n')
    return config


# --- finding 1: only the assistant's own folder, and only its own folders chmodded ------------


@pytest.mark.parametrize("shared", [0o1777, 0o777, 0o1700], ids=["like-tmp", "world-writable", "sticky"])
def test_a_shared_folder_given_as_data_dir_is_refused_and_left_as_it_was(tmp_path: Path, shared: int) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(shared)
    before = snapshot(data)
    message = keep_a_session(data)
    assert f"the data folder {data} is shared" in message and "choose a data_dir" in message
    assert "\n" not in message and "chmod" not in message, "never advised to close a shared folder"
    assert mode(data) == shared, "other users keep their folder"
    assert snapshot(data) == before, "nothing made in it"


@pytest.mark.parametrize("where", ["data", "records", "reports"])
def test_a_data_folder_or_subfolder_that_is_a_link_is_refused_and_nothing_is_changed_through_it(
    tmp_path: Path, where: str
) -> None:
    data = tmp_path / "data"
    target = tmp_path / "someone-elses"
    target.mkdir()
    target.chmod(0o755)
    (target / "their-file.txt").write_text("van iemand anders")
    if where == "data":
        data.symlink_to(target)
    else:
        data.mkdir(mode=0o700)
        (data / where).symlink_to(target)
    before = snapshot(target)
    if where == "reports":
        with pytest.raises(JournalError) as refused:  # the report's error wraps the refusal
            write_report(data, record())  # type: ignore[arg-type]
        message = str(refused.value)
    else:
        message = keep_a_session(data)
    assert "is a symbolic link" in message and "choose a data_dir" in message
    assert snapshot(target) == before, "the link's target is not chmodded or written"


def test_only_a_folder_the_assistant_makes_is_set_to_0700_and_an_existing_own_one_is_left_alone(
    tmp_path: Path,
) -> None:
    old = os.umask(0)  # the loosest umask: a folder made here is still 0700
    try:
        made = tmp_path / "new" / "deeper" / "intervisie"
        Journal(made)
        assert mode(made) == 0o700 and mode(made / "records") == 0o700
        assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deeper") == 0o755, "no parent writable by others"
        own = tmp_path / "documents"
        own.mkdir(mode=0o755)
        journal = Journal(own)
        journal.finish(record())  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert mode(own) == 0o755, "an existing folder of the user's own is used, not changed"
    assert mode(own / "records") == 0o700 and mode(own / "records" / f"{SESSION}.json") == 0o600


def test_a_link_higher_up_the_path_is_followed(tmp_path: Path) -> None:
    """``/home`` -> ``/data/home`` is the administrator's choice: only the data folder itself must be no link."""
    (tmp_path / "real-home").mkdir()
    (tmp_path / "home").symlink_to(tmp_path / "real-home")
    data = tmp_path / "home" / "intervisie"
    Journal(data).finish(record())  # type: ignore[arg-type]
    assert (tmp_path / "real-home" / "intervisie" / "records" / f"{SESSION}.json").is_file()


@pytest.mark.parametrize("how", ["records-link", "data-link", "shared"])
def test_report_and_forget_refuse_a_linked_or_shared_folder_with_one_line_and_delete_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    data = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "records").mkdir(parents=True)
    (elsewhere / "records" / f"{SESSION}.json").write_text(json.dumps(record()))
    if how == "records-link":
        data.mkdir(mode=0o700)
        (data / "records").symlink_to(elsewhere / "records")
    elif how == "data-link":
        data.symlink_to(elsewhere)
    else:
        data = elsewhere
        data.chmod(0o1777)
    before = snapshot(elsewhere)
    config = write_config(tmp_path, data)
    for args in (["report", "--list"], ["report"], ["forget", SESSION], ["forget", "--all"]):
        assert main([*args, "--config", str(config)]) == 1, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("intervisie: the data folder "), err
        assert "is a symbolic link" in err or "is shared" in err
    assert snapshot(elsewhere) == before, "no session deleted, no mode changed"


# --- finding 3: one daemon at a time ----------------------------------------------------------

_HOLDER = """
import sys, time
from pathlib import Path
from assistant.storage.lock import lock_data_folder
lock = lock_data_folder(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_names_the_process_that_holds_it_and_is_free_once_that_process_is_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data)], cwd=PROJECT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert mode(data / "intervisie.lock") == 0o600
        with pytest.raises(FolderBusy) as busy:
            lock_data_folder(data)
        assert busy.value.pid == holder.pid
        assert f"another intervisie (process {holder.pid}) is using the data folder {data}; stop it first" in str(
            busy.value
        )
    finally:
        holder.kill()  # a power cut: the kernel drops the lock with the process
        holder.wait()
    lock_data_folder(data).release()
    assert not (data / "intervisie.lock").exists(), "a stopped daemon leaves only the sessions"


@pytest.mark.parametrize("planted", ["link", "fifo", "folder"])
def test_a_link_fifo_or_folder_planted_as_the_lock_file_is_refused_without_following_or_hanging(
    tmp_path: Path, planted: str
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    outside = tmp_path / "outside.txt"
    outside.write_text("niet van de assistent")
    outside_mode = mode(outside)
    lock = data / "intervisie.lock"
    {"link": lambda: lock.symlink_to(outside), "fifo": lambda: os.mkfifo(lock), "folder": lock.mkdir}[planted]()
    started = time.monotonic()
    with pytest.raises(FolderRefused) as refused:
        lock_data_folder(data)
    assert time.monotonic() - started < 5
    assert f"the lock file {lock} is" in str(refused.value) and "remove it" in str(refused.value)
    assert outside.read_text() == "niet van de assistent" and mode(outside) == outside_mode


@pytest.mark.slow
def test_a_second_daemon_on_the_same_data_folder_stops_with_one_line_and_touches_nothing(
    tmp_path: Path, alsa_files
) -> None:
    first = Daemon(tmp_path)  # real time: nothing of its own is journaled while the second one tries
    try:
        first.expect("say [ready]")
        first.expect("speech recognition: no_model")
        first.key("")
        first.expect("say [phase]: Fase 1:")
        before = snapshot(tmp_path / "data")
        second = subprocess.run(
            [sys.executable, "-m", "assistant", "run", "--config", str(tmp_path / "config.toml")],
            cwd=PROJECT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        assert second.returncode == 1
        assert second.stderr == (
            f"intervisie: another intervisie (process {first.proc.pid}) is using the data folder {tmp_path / 'data'}; "
            "stop it first (sudo systemctl stop intervisie, if it is the service), or give this one a data_dir of "
            "its own\n"
        )
        assert snapshot(tmp_path / "data") == before, "no resume, the journal untouched"
        first.key("")
        first.expect("say [phase]: Fase 2:")
        first.key("q")
        assert first.finish() == 0
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    assert not (tmp_path / "data" / "intervisie.lock").exists()
    journal = [json.loads(line) for line in (tmp_path / "data" / "current.jsonl").read_text().splitlines()]
    assert not any(entry.get("event") == "resume" for entry in journal), "the first session was never resumed"


@pytest.mark.slow
def test_a_daemon_on_a_shared_data_folder_keeps_time_keeps_nothing_and_says_why_once(
    tmp_path: Path, alsa_files
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    write_config(tmp_path, shared)
    daemon = Daemon(tmp_path, "--speed", "30")
    try:
        line = daemon.expect("is shared")
        assert "ERROR" in line and str(shared) in line and "choose a data_dir" in line
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.expect("say [storage_failed]")  # the group hears it once, as for a full disk
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert sum("is shared" in line for line in daemon.log) == 1
    assert "Traceback" not in "".join(daemon.log)
    assert mode(shared) == 0o1777 and not any(shared.iterdir())


# --- another user's folder (these need root for the second user) ------------------------------


@pytest.mark.slow
def test_a_folder_of_another_user_is_refused_and_left_as_it_was(open_tmp: Path) -> None:
    need_root()
    theirs = open_tmp / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(FolderRefused) as refused:
        private_dir(theirs)
    assert "belongs to the user nobody, not to root" in str(refused.value)
    assert "sudo -u nobody" in str(refused.value)
    assert mode(theirs) == 0o755 and theirs.stat().st_uid == NOBODY
    # The same without root: nobody is given a folder of root's.
    root_owned = open_tmp / "roots"
    root_owned.mkdir(mode=0o755)
    os.seteuid(NOBODY)
    try:
        with pytest.raises(FolderRefused) as refused:
            private_dir(root_owned)
    finally:
        os.seteuid(0)
    assert "belongs to the user root, not to nobody" in str(refused.value)
    assert "sudo -u root" not in str(refused.value), "not advised to run as root"
    assert mode(root_owned) == 0o755


@pytest.mark.slow
def test_a_group_writable_folder_is_refused_unless_the_group_is_the_owners_own(open_tmp: Path) -> None:
    need_root()
    own_group = open_tmp / "own-group"
    own_group.mkdir()
    own_group.chmod(0o770)  # root's own group "root": only root is in it
    private_dir(own_group)
    shared = open_tmp / "shared-group"
    shared.mkdir()
    os.chown(shared, 0, 100)  # the group "users"
    shared.chmod(0o770)
    with pytest.raises(FolderRefused, match="is shared"):
        private_dir(shared)
    assert mode(shared) == 0o770


@pytest.mark.slow
def test_sudo_report_still_reads_the_services_sessions(
    open_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_root()
    data = open_tmp / "var-lib-intervisie"
    (data / "records").mkdir(parents=True, mode=0o700)
    (data / "records" / f"{SESSION}.json").write_text(json.dumps(record()))
    for path in (data, data / "records", data / "records" / f"{SESSION}.json"):
        os.chown(path, NOBODY, NOBODY)
    data.chmod(0o700)
    config = write_config(tmp_path, data)
    assert main(["report", "--list", "--config", str(config)]) == 0
    assert SESSION in capsys.readouterr().out


@pytest.mark.slow
def test_root_will_not_run_the_daemon_in_another_users_data_folder(open_tmp: Path, tmp_path: Path) -> None:
    need_root()
    data = open_tmp / "var-lib-intervisie"
    data.mkdir(mode=0o700)
    os.chown(data, NOBODY, NOBODY)
    config = write_config(tmp_path, data)
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "run", "--config", str(config)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        f"intervisie: will not run as root in the data folder {data} of the user nobody"
    ), done.stderr
    # The command as it can be run here (from a checkout: .venv/bin/intervisie).
    assert re.search(r"sudo -u nobody \S*intervisie run", done.stderr) and "systemctl start intervisie" in done.stderr
    assert not any(data.iterdir()) and data.stat().st_uid == NOBODY and mode(data) == 0o700


@pytest.mark.slow
def test_a_daemon_run_as_another_user_keeps_time_in_a_folder_not_its_own_and_writes_nothing(open_tmp: Path) -> None:
    need_root()
    data = open_tmp / "roots-data"
    data.mkdir(mode=0o755)
    write_config(open_tmp, data)
    (open_tmp / "config.toml").chmod(0o644)
    daemon = Daemon(
        open_tmp, "--speed", "30", env={"PYTHONDONTWRITEBYTECODE": "1"},
        wrapper=["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"],
    )
    try:
        line = daemon.expect("belongs to the user root, not to nobody")
        assert "ERROR" in line and "nothing is kept or resumed" in line
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.expect("say [storage_failed]")
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert "Traceback" not in "".join(daemon.log)
    assert not any(data.iterdir()) and mode(data) == 0o755


def test_a_data_folder_that_cannot_be_made_is_one_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JournalError) as error:
        private_dir(blocker / "intervisie")
    assert not isinstance(error.value, FolderRefused)
    assert str(blocker / "intervisie") in str(error.value)
