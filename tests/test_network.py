"""Nothing the group says leaves the device: no code path opens a network socket.

Two watchers. In the tests' own process an audit hook (tests/conftest.py) fails any test
in which the project's code makes, connects, binds or sends on a socket, or looks up a
name, outside the model download and the systemd notify socket. The daemon and the CLI
run as child processes under strace, which sees every socket the process and its
libraries (PortAudio, ALSA, espeak-ng, Vosk) open at the system-call level: only local
(AF_UNIX) sockets may appear, and they may only reach the notify socket or a local sound
server that ALSA and PortAudio look for (PulseAudio, PipeWire, JACK).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import KOREAN_MODEL, PROJECT, Daemon, network_violations

pytestmark = pytest.mark.slow  # the daemon and the commands as processes under strace

TRACED = "socket,socketpair,connect,bind,listen,accept,accept4,sendto,sendmsg"
LOCAL_SOUND_SERVERS = re.compile(r"/pulse[^\"]*/native|/pipewire-\d|/dev/shm/jack[^\"]*")
"""Where ALSA's pulse plugin, PipeWire and PortAudio's JACK host API look for a sound server."""


@pytest.fixture
def strace() -> list[str]:
    found = shutil.which("strace")
    if found is None:
        pytest.fail("strace is missing: scripts/setup.sh --test installs it (apt-get install strace)")
    # seccomp-bpf: only the traced calls stop the process, so it runs at nearly full speed.
    return [found, "-f", "-qq", "--seccomp-bpf", "-e", f"trace={TRACED}"]


def kill_traced(pid: int) -> None:
    """Kill strace and the daemon it traces: killing strace alone leaves the daemon running
    (busy, its traced calls failing) after the test."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def socket_calls(trace: Path) -> list[str]:
    """The traced calls, without the pid column and signal lines."""
    calls = []
    for line in trace.read_text().splitlines():
        _pid, _, call = line.partition(" ")
        call = call.strip()
        if call and not call.startswith(("---", "+++")):
            calls.append(call)
    return calls


def network_faults(calls: list[str], notify: Path | None) -> list[str]:
    """Every call that is not local, or reaches anything but notify or a sound server."""
    faults = []
    for call in calls:
        name = call.split("(", 1)[0]
        if name in ("socket", "socketpair"):
            if not call.startswith(f"{name}(AF_UNIX,"):
                faults.append(call)
            continue
        if name in ("listen", "accept", "accept4"):
            faults.append(call)  # the daemon serves nothing
            continue
        address = re.search(r"sun_path=(@?)\"([^\"]*)\"", call)
        if "sa_family=" not in call:
            continue  # a send on a connected socket: its connect() was checked
        if address is None:
            faults.append(call)  # an address that is not a local path
            continue
        path = address.group(2)
        if notify is not None and path == str(notify):
            continue
        if name == "connect" and LOCAL_SOUND_SERVERS.search(path):
            continue
        faults.append(call)
    return faults


def test_a_whole_session_in_the_daemon_opens_no_network_socket(tmp_path: Path, strace: list[str], alsa_files) -> None:
    # With a real speech model: importing vosk (and its requests/urllib3) is on the path.
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{tmp_path / "data"}"\nparticipants = 0\n[listening]\nmodel = "{KOREAN_MODEL}"\n'
    )
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    trace = tmp_path / "trace"
    daemon = Daemon(
        tmp_path,
        "--speed",
        "60",
        env={"NOTIFY_SOCKET": str(notify)},
        wrapper=[*strace, "-o", str(trace)],
    )
    try:
        daemon.expect("say [ready]")
        daemon.expect("speech recognition: ready", timeout=60)
        # Press on through the phases and the notes they invite (nobody speaks) to the end.
        for _ in range(60):
            if any("say [summary]" in line for line in daemon.log):
                break
            daemon.key("")
            time.sleep(0.3)
        daemon.expect("say [summary]")
        daemon.expect("report of session")
        daemon.key("q")
        assert daemon.finish(timeout=30) == 0
    finally:
        if daemon.proc.poll() is None:
            kill_traced(daemon.proc.pid)
        listener.close()
    calls = socket_calls(trace)
    assert any("READY=1" in call for call in calls), "strace saw the daemon's sockets"
    assert network_faults(calls, notify) == []


def test_the_commands_open_no_socket_at_all(tmp_path: Path, strace: list[str], alsa_files) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[listening]\nmodel = "{tmp_path / "no-model"}"\n')
    commands = [
        ["check", "--timeout", "1"],
        ["say", "Hallo"],
        ["report", "--list"],
        ["model", "list"],
        ["model", "check"],
        ["model", "check", str(KOREAN_MODEL)],  # loads the model with vosk
    ]
    for command in commands:
        trace = tmp_path / f"trace-{command[0]}"
        done = subprocess.run(
            [*strace, "-o", str(trace), sys.executable, "-m", "assistant", *command, "--config", str(config)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert trace.exists(), done.stderr
        assert network_faults(socket_calls(trace), None) == [], command


def test_network_faults_are_recognised_in_a_trace() -> None:
    calls = [
        'socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 5',
        'sendto(5, "READY=1", 7, 0, {sa_family=AF_UNIX, sun_path="/run/n"}, 9) = 7',
        'connect(6, {sa_family=AF_UNIX, sun_path="/run/user/0/pulse/native"}, 110) = -1 ENOENT',
        'socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 7',
        'connect(7, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("1.2.3.4")}, 16) = 0',
        'connect(8, {sa_family=AF_UNIX, sun_path="/run/dbus/system_bus_socket"}, 110) = 0',
    ]
    assert network_faults(calls, Path("/run/n")) == [calls[3], calls[4], calls[5]]


@pytest.mark.network_guard_test
def test_the_guard_stops_project_code_that_reaches_for_the_network() -> None:
    # Code compiled as if it were a module of the project, opening an internet socket.
    reach_out = compile(
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n",
        str(PROJECT / "assistant" / "stray.py"),
        "exec",
    )
    before = len(network_violations)
    with pytest.raises(PermissionError, match="network use outside"):
        exec(reach_out, {})
    assert len(network_violations) == before + 1
    lookup = compile("import socket\nsocket.getaddrinfo('localhost', 80)\n", str(PROJECT / "assistant" / "x.py"), "exec")
    with pytest.raises(PermissionError):
        exec(lookup, {})
    # The same from the tests' own code (a loopback server for the downloader) is allowed.
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    assert len(network_violations) == before + 2


def test_importing_vosk_opens_no_socket() -> None:
    # vosk imports requests, and urllib3 probes IPv6 at import by binding a socket to ::1.
    # A fresh interpreter, since the tests' own process imported vosk long ago.
    probe = (
        "import sys\n"
        "made = []\n"
        "sys.addaudithook(lambda event, args: made.append(args[1]) if event == 'socket.__new__' else None)\n"
        "from assistant.audio.model import import_vosk\n"
        "import_vosk()\n"
        "print(made)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    plain = subprocess.run(
        [sys.executable, "-c", probe.replace("from assistant.audio.model import import_vosk\nimport_vosk()", "import vosk")],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
    )
    assert plain.stdout.strip() == f"[{int(socket.AF_INET6)}]", "a plain import of vosk does open one (the check can fail)"
