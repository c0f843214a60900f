"""What the device says never reaches a disk-backed file (issue 9, findings 16 and 17).

espeak-ng's renderings, "Ik heb genoteerd: <the leervraag>" among them, used to be WAV
files in ``/tmp``, which on Pi OS is the SD card; a killed run left them there, and once
the folder was cleaned away another local user could plant links in its place. Now every
rendering stays in memory, and folders that older runs left behind are removed at start.

The whole-session check runs the daemon under strace and looks at every file it opens for
writing: on a disk-backed file system only the data folder's session files may appear.
Its sound card (ALSA's file plugin, the test's stand-in for the speaker) and microphone
are put in ``/dev/shm`` so that the speaker's own output is not on disk either.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import (
    PROJECT,
    SPOKEN,
    Daemon,
    Microphone,
    leervraag_in_phase_two,
    no_dither_model,
    press_to_the_end,
    spoken_note,
)

from assistant.audio import synthesis
from assistant.testing import filesound

RAM_FILE_SYSTEMS = {"tmpfs", "ramfs", "devtmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}
"""File systems whose files live in memory (or are not files at all)."""
WRITING = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
OPENED = re.compile(r'^(?:\d+\s+)?(open|openat|openat2|creat)\(.*?"(?P<name>[^"]*)".*?\) = (?P<fd>\d+)<(?P<path>[^>]*)>')
SESSION_FILES = re.compile(
    r"(\.?current\.jsonl(\.tmp)?|\.?lock|(records|reports)/\.?\d{8}-\d{6}(-\d+)?\.(json|md|html)(\.tmp)?)$"
)
"""What a session may write in its data folder (the journal, a record, its reports)."""


def mounts() -> list[tuple[str, str]]:
    """(mount point, file system type), longest mount point first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].replace("\\040", " ")
        kind = fields[fields.index("-") + 1]
        found.append((point, kind))
    return sorted(found, key=lambda item: len(item[0]), reverse=True)


def file_system(path: str, table: list[tuple[str, str]]) -> str:
    for point, kind in table:
        if path == point or path.startswith(point.rstrip("/") + "/"):
            return kind
    return "?"


def written_on_disk(trace: Path) -> list[str]:
    """Every file the traced processes opened for writing on a disk-backed file system."""
    table = mounts()
    found = []
    for line in trace.read_text(errors="replace").splitlines():
        opened = OPENED.search(line)
        if opened is None or not WRITING.search(line):
            continue
        path = opened.group("path")
        if file_system(path, table) not in RAM_FILE_SYSTEMS:
            found.append(path)
    return found


def is_sound_server_folder(path: Path) -> bool:
    """libpulse's runtime folder (``pulse-*``), made when ALSA's pulse plugin looks for a
    sound server: no file in it."""
    return path.name.startswith("pulse-") and path.is_dir() and not any(p.is_file() for p in path.rglob("*"))


@pytest.fixture
def ram_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="intervisie-test-", dir="/dev/shm"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_written_on_disk_finds_a_wav_file_in_a_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    disk = tmp_path / "x" / "0.wav"
    trace.write_text(
        f'123 openat(AT_FDCWD</>, "{disk}", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 7<{disk}>\n'
        f'123 openat(AT_FDCWD</>, "/dev/shm/a", O_WRONLY|O_CREAT, 0600) = 8</dev/shm/a>\n'
        f'123 openat(AT_FDCWD</>, "{disk}", O_RDONLY|O_CLOEXEC) = 9<{disk}>\n'
    )
    if file_system(str(tmp_path), mounts()) in RAM_FILE_SYSTEMS:
        pytest.fail("the test folder must be on a disk-backed file system")
    assert written_on_disk(trace) == [str(disk)]


def test_say_writes_no_file_and_removes_what_older_runs_left(tmp_path: Path, alsa_files) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    mine = temporary / "intervisie-speech-abc123"
    mine.mkdir(mode=0o700)
    (mine / "3.wav").write_bytes(b"RIFF" + bytes(100))  # what a killed run left
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / ".profile").write_text("export PATH\n")
    planted = temporary / "intervisie-speech-planted"
    planted.symlink_to(victim)
    someone_elses = temporary / "intervisie-speech-other"
    someone_elses.mkdir()
    (someone_elses / "keep").write_text("not ours")
    if os.geteuid() == 0:
        os.chown(someone_elses, 65534, 65534)  # nobody's
    before = alsa_files.out.stat().st_size
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "say", "Ik heb genoteerd: hoe houd ik de klas rustig."],
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    assert done.returncode == 0, done.stderr
    assert alsa_files.out.stat().st_size - before > 22050, "the sentence was spoken"
    assert not mine.exists(), "the folder an older run left behind is gone"
    assert planted.is_symlink() and (victim / ".profile").read_text() == "export PATH\n", "a link is not followed"
    if os.geteuid() == 0:
        assert (someone_elses / "keep").read_text() == "not ours", "another user's folder is left alone"
    assert sorted(p.name for p in temporary.iterdir() if not is_sound_server_folder(p)) == sorted(
        ["intervisie-speech-planted"] + (["intervisie-speech-other"] if os.geteuid() == 0 else [])
    ), "nothing new in the temporary folder"


def test_leftovers_of_this_user_only_are_removed(tmp_path: Path) -> None:
    (tmp_path / "intervisie-speech-1").mkdir()
    (tmp_path / "intervisie-speech-1" / "0.wav").write_bytes(b"RIFF")
    (tmp_path / "intervisie-speech-file").write_text("a file, not a folder")
    (tmp_path / "other-folder").mkdir()
    assert synthesis.remove_leftovers(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intervisie-speech-file", "other-folder"]
    assert synthesis.remove_leftovers(tmp_path / "missing") == 0


@pytest.mark.slow  # the daemon under strace, a microphone at real time, the real model
def test_a_whole_session_with_a_note_writes_no_sound_to_disk(tmp_path: Path, ram_folder: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is missing: scripts/setup.sh --test installs it (apt-get install strace)")
    if file_system(str(tmp_path), mounts()) in RAM_FILE_SYSTEMS:
        pytest.fail("the data folder must be on a disk-backed file system for this test to mean anything")
    sound = filesound.write_asoundrc(ram_folder / "home")
    mic = Microphone(sound.inp)
    model = no_dither_model(ram_folder / "model")
    clip, _ = spoken_note(mic, SPOKEN)
    data = tmp_path / "data"
    disk_tmp = tmp_path / "tmp"  # /tmp as on Pi OS: on the SD card
    disk_tmp.mkdir()
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{data}"\nparticipants = 0\n[listening]\nmodel = "{model}"\n'
        "silence_seconds = 1.0\nwait_seconds = 7.0\nmax_seconds = 20\n"
    )
    trace = tmp_path / "trace"
    daemon = Daemon(
        tmp_path, "--speed", "6",
        env={"HOME": str(sound.home), "TMPDIR": str(disk_tmp), "PYTHONDONTWRITEBYTECODE": "1"},
        wrapper=[strace, "-f", "-qq", "-y", "--seccomp-bpf", "-e", "trace=open,openat,openat2,creat", "-o", str(trace)],
    )
    try:
        leervraag_in_phase_two(daemon, mic, sound.out, clip)  # "Ik heb genoteerd: <the leervraag>"
        daemon.key("")
        daemon.expect("say [note_saved]")
        press_to_the_end(daemon, "summary")
        daemon.expect("report of session")
        daemon.key("q")
        assert daemon.finish(timeout=60) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        mic.close()
    records = list((data / "records").glob("*.json"))
    assert len(records) == 1 and "leervraag" in records[0].read_text(), "the note was kept"
    written = written_on_disk(trace)
    assert any(path.startswith(str(data)) for path in written), "strace saw the session's files being written"
    unexpected = [p for p in written if not (p.startswith(str(data) + "/") and SESSION_FILES.search(p))]
    assert unexpected == [], "only the session's own files are written on disk"
    assert [p for p in disk_tmp.iterdir() if not is_sound_server_folder(p)] == []
