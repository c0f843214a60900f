"""What the device says, readable in the terminal it runs in (issue 10, finding 9).

The daemon runs as a process whose standard output is a pseudo-terminal, as when a new
user starts it on a laptop without a sound card: each spoken text must appear on a line of
its own with the session time, not only inside log lines. With the output not a terminal
(a pipe, as under systemd) nothing extra is printed.
"""

from __future__ import annotations

import os
import pty
import re
import select
import time
from pathlib import Path

import pytest
from support import Daemon

from assistant.service.console import clock, console_echo, printable

pytestmark = pytest.mark.slow  # the daemon as a process


def read_terminal(fd: int, until: str, timeout: float = 20) -> str:
    """What the daemon wrote to its terminal until ``until`` appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while until.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{until!r} not on the terminal; it showed:\n{seen.decode(errors='replace')}"
        if select.select([fd], [], [], left)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen.decode(errors="replace")


def test_in_a_terminal_each_spoken_text_is_a_line_with_the_session_time(tmp_path: Path, alsa_files) -> None:
    controller, terminal = pty.openpty()
    daemon = Daemon(tmp_path, "--speed", "60", stdout=terminal)
    os.close(terminal)
    try:
        shown = read_terminal(controller, "Druk op de knop om te beginnen.")
        assert re.search(r"^--:--  Hallo, ik ben klaar voor de intervisie\. Druk op de knop om te beginnen\.\r?$",
                         shown, re.M), shown
        daemon.key("")
        shown = read_terminal(controller, "Fase 1: inventarisatie.")
        assert re.search(r"^00:00  We beginnen\. De intervisie duurt ongeveer 50 minuten\.", shown, re.M), shown
        shown = read_terminal(controller, "Nog 1 minuut.", timeout=30)  # 4 minutes at 60 times: 4 s
        assert re.search(r"^0[34]:\d\d  Nog 1 minuut\.", shown, re.M), shown
        assert "INFO" not in shown, "the log stays on standard error"
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        os.close(controller)


def test_with_the_output_not_a_terminal_nothing_extra_is_printed(tmp_path: Path, alsa_files) -> None:
    daemon = Daemon(tmp_path, "--speed", "60")
    try:
        daemon.expect("say [ready]")
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert daemon.proc.stdout is not None
    assert daemon.proc.stdout.read() == ""


def test_the_echo_writes_one_line_and_only_to_a_terminal(tmp_path: Path) -> None:
    assert [clock(None), clock(0), clock(61.9), clock(3725)] == ["--:--", "00:00", "01:01", "1:02:05"]
    assert printable("Fase 2:\nintroductie\x1b[2J") == "Fase 2: introductie [2J"
    with open(tmp_path / "file", "w") as not_a_terminal:
        assert console_echo(lambda: None, not_a_terminal) is None
