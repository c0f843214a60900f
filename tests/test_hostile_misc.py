"""Issue 9, the smaller hostile inputs: a huge method file, an endless keyboard line, a
model site redirecting elsewhere, and what the command echoes and where it writes.

Each test runs the real command or the real daemon process where it can.
"""

from __future__ import annotations

import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import MAX_METHOD_BYTES, load_method, load_phrases
from assistant.core.events import ButtonDown, DoublePress, Event, LongPress, Press
from assistant.core.method import MAX_PHASES, MAX_TEXT_CHARS, MAX_TOTAL_MINUTES
from assistant.core.session import Session
from assistant.core.settings import Settings

PROJECT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    """``intervisie ARGS`` as a process; its output as text."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT, **kw
    )


def config_file(tmp_path: Path) -> Path:
    """Settings with a data folder of the test's own."""
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


# --------------------------------------------------------------- finding 10: the method's bounds


def method_text(phases: int, minutes: float = 1, text: str = "doe", languages: tuple[str, ...] = ("nl",)) -> str:
    """A method file of ``phases`` phases of ``minutes`` each, every text ``text``."""
    head = 'id = "groot"\n' + "".join(f'name.{lang} = "groot"\n' for lang in languages)
    phase = '[[phases]]\nkey = "p{n}"\nminutes = {minutes}\n' + "".join(
        f'name.{lang} = "f{{n}}"\nguidance.{lang} = "{{text}}"\n' for lang in languages
    )
    return head + "".join(phase.format(n=n, minutes=minutes, text=text) for n in range(1, phases + 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The file: 10,000 one-minute phases, 808 kB (the daemon prepared 10,017
        # phrases for 117 s and grew to 2.3 GB).
        (method_text(10_000), f"the file is larger than {MAX_METHOD_BYTES:,} bytes"),
        (method_text(MAX_PHASES + 1), f"phases: expected at most {MAX_PHASES} [[phases]] tables, got 21"),
        (method_text(5, minutes=60), "phases: the phases last 300 minutes together; a method may last at most 240 minutes"),
        (
            method_text(2, text="a" * (MAX_TEXT_CHARS + 1)),
            "phases[1].guidance.nl: expected a text of at most 3,000 characters, got 3,001",
        ),
        (
            method_text(1).replace('key = "p1"', f'key = "{"k" * 65}"'),
            "phases[1].key: expected a text of at most 64 characters, got 65",
        ),
    ],
    ids=["10000-phases", "21-phases", "5-hours", "long-guidance", "long-key"],
)
def test_a_method_beyond_its_bounds_is_one_clear_line_and_exit_code_2(tmp_path: Path, text: str, expected: str) -> None:
    method = tmp_path / "method.toml"
    method.write_text(text, encoding="utf-8")
    started = time.monotonic()
    done = run_cli("run", "--config", str(config_file(tmp_path)), "--method", str(method), timeout=60)
    took = time.monotonic() - started
    print(f"{method.stat().st_size:,} bytes refused in {took:.1f} s")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"intervisie: configuration error: {method}: ")
    assert expected in lines[0]
    assert took < 10


def test_the_largest_method_within_the_bounds_loads_and_leads_a_session(tmp_path: Path) -> None:
    """Every method a group might write fits: 20 phases of 12 minutes, each text 3,000 characters."""
    word = "Luister goed naar elkaar. "
    text = (word * (MAX_TEXT_CHARS // len(word) + 1))[:MAX_TEXT_CHARS].strip()
    path = tmp_path / "largest.toml"
    path.write_text(method_text(MAX_PHASES, MAX_TOTAL_MINUTES / MAX_PHASES, text, ("nl", "en")), encoding="utf-8")
    assert path.stat().st_size < MAX_METHOD_BYTES
    method = load_method(str(path), "nl")
    assert len(method.phases) == MAX_PHASES and method.seconds == MAX_TOTAL_MINUTES * 60
    assert load_method(str(path), "en").phases[-1].guidance == text
    settings = Settings()
    session = Session(method, load_phrases("nl"), settings.announcements, settings.schedule, 0)
    assert len(session.fixed_phrases()) > MAX_PHASES


def test_the_shipped_method_is_well_within_the_bounds() -> None:
    shipped = PROJECT / "config" / "methods" / "intervisie.toml"
    assert shipped.stat().st_size * 10 < MAX_METHOD_BYTES
    for language in ("nl", "en"):
        method = load_method("intervisie", language)
        assert len(method.phases) * 2 <= MAX_PHASES
        assert method.seconds / 60 * 4 <= MAX_TOTAL_MINUTES
        assert max(len(p.guidance) for p in method.phases) * 5 < MAX_TEXT_CHARS


# --------------------------------------------------------------- finding 14: an endless keyboard line


def rss_mb(pid: int) -> float:
    """The resident size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.slow
def test_the_daemon_reading_dev_zero_as_its_keyboard_stays_small_and_stops_cleanly(tmp_path: Path, alsa_files) -> None:
    """``intervisie run </dev/zero`` grew to 4 GB in 12 s: one endless line, read whole."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nparticipants = 0\n[listening]\nmodel = "{tmp_path / "no-model"}"\n'
    )
    log = tmp_path / "daemon.log"
    with open("/dev/zero", "rb") as zero, open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "run", "--config", str(config), "--speed", "60"],
            cwd=PROJECT, stdin=zero, stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "GPIOZERO_PIN_FACTORY": ""},
        )
    try:
        deadline = time.monotonic() + 30
        while "say [gestures]" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        sizes = []
        for _ in range(25):  # five seconds, stopped at once if it grows
            sizes.append(rss_mb(proc.pid))
            assert sizes[-1] < 400, f"grew to {sizes[-1]:.0f} MB"
            time.sleep(0.2)
        print(f"resident size over 5 s of /dev/zero: {min(sizes):.0f}-{max(sizes):.0f} MB")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, text
    assert max(sizes) - min(sizes) < 20, sizes
    assert "Traceback" not in text
    warned = [line for line in text.splitlines() if "keys are no longer read" in line]
    assert len(warned) == 1 and "WARNING" in warned[0] and "more than 256 characters" in warned[0], text
    assert "say [phase]" not in text, "no part of the line was taken as a press"


def test_an_endless_line_of_spaces_is_not_taken_as_presses_and_a_typed_key_after_it_is_not_read() -> None:
    """Read in bounded pieces, each piece of spaces would be a press: 781 of them here."""
    from assistant.hardware.button import KeyboardButton

    posted: list[Event] = []
    keyboard = KeyboardButton(posted.append, stream=io.StringIO(" " * 200_000 + "\nq\n"))
    assert keyboard.wait_closed(10)
    assert posted == []
    # Ordinary lines, also the last one without its line break, are still keys.
    posted.clear()
    keyboard = KeyboardButton(posted.append, stream=io.StringIO("\n" + "d" * 255 + "\np"))
    assert keyboard.wait_closed(10)
    assert [type(e) for e in posted] == [ButtonDown, Press, ButtonDown, ButtonDown, DoublePress, ButtonDown, LongPress]


# --------------------------------------------------------------- finding 19: redirects off the web


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """A model site that sends every request on to ``server.target`` (a 302)."""

    server: _RedirectingSite

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        if self.path == "/model-list.json" and self.server.target:
            self.send_response(302)
            self.send_header("Location", self.server.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _RedirectingSite(http.server.ThreadingHTTPServer):
    daemon_threads = True
    target = ""
    requests: list[str]


@pytest.fixture
def redirecting_site() -> Iterator[_RedirectingSite]:
    server = _RedirectingSite(("127.0.0.1", 0), _Redirecting)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("scheme", ["ftp", "file", "FTP"])
def test_a_redirect_off_http_is_refused_with_one_clear_line(
    tmp_path: Path, redirecting_site: _RedirectingSite, scheme: str
) -> None:
    # A listener standing in for an FTP server: the downloader must never connect to it.
    ftp = socket.socket()
    ftp.bind(("127.0.0.1", 0))
    ftp.listen(1)
    ftp.setblocking(False)
    try:
        port = ftp.getsockname()[1]
        target = f"{scheme}://127.0.0.1:{port}/model-list.json" if scheme != "file" else "file:///etc/passwd"
        redirecting_site.target = target
        site = f"http://127.0.0.1:{redirecting_site.server_address[1]}"
        done = run_cli(
            "model", "list", "--available", "--models-dir", str(tmp_path / "models"), "--site", site, "--timeout", "3"
        )
        with pytest.raises(BlockingIOError):
            ftp.accept()  # nobody connected
    finally:
        ftp.close()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"intervisie: 127.0.0.1:{redirecting_site.server_address[1]} sent the download on to {target!r}, "
        "which is not an http or https address: refused; try again later, or check --site"
    ], done.stderr
    assert redirecting_site.requests == ["/model-list.json"]


def test_a_redirect_to_another_http_address_is_still_followed(redirecting_site: _RedirectingSite) -> None:
    from assistant.vosk_models.catalog import fetch_model_list

    site = f"http://127.0.0.1:{redirecting_site.server_address[1]}"
    redirecting_site.target = f"{site}/elsewhere.json"
    assert fetch_model_list(site, timeout=5) == []
    assert redirecting_site.requests == ["/model-list.json", "/elsewhere.json"]


# --------------------------------------------------------------- finding 22: what the command writes and echoes


def kept_sessions(tmp_path: Path, count: int = 300) -> Path:
    """A settings file whose data folder keeps ``count`` finished sessions."""
    from assistant.storage.journal import Journal

    journal = Journal(tmp_path / "data")
    for n in range(count):
        started = 1_800_000_000.0 + n
        journal.finish({
            "id": f"20270115-09{n // 60:02d}{n % 60:02d}", "started_wall": started, "ended_wall": started + 60,
            "method": "intervisie", "language": "nl", "finished": True, "phases": [], "captures": {},
        })
    return config_file(tmp_path)


def broken_pipe() -> int:
    """The writing end of a pipe whose reader is gone: every write is EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize(
    "command",
    [["report", "--list"], ["report", "--list", "--json"], ["report", "20270115-090000"], ["report", "--json"],
     ["model", "list"], ["--help"], ["report", "--help"]],
    ids=lambda c: " ".join(c),
)
@pytest.mark.parametrize("where", ["/dev/full", "closed pipe"])
def test_output_that_cannot_be_written_ends_in_one_line_and_exit_code_1(
    tmp_path: Path, command: list[str], where: str
) -> None:
    config = kept_sessions(tmp_path)
    args = [*command, "--config", str(config)] if command[-1] != "--help" else command
    expected = "No space left on device" if where == "/dev/full" else "Broken pipe"
    out = os.open("/dev/full", os.O_WRONLY) if where == "/dev/full" else broken_pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "assistant", *args], stdout=out, stderr=subprocess.PIPE, text=True, timeout=60, cwd=PROJECT
        )
    finally:
        os.close(out)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"intervisie: cannot write the output ({expected})"], done.stderr


def test_a_huge_or_hostile_id_is_shown_back_short_and_escaped(tmp_path: Path) -> None:
    config = kept_sessions(tmp_path, 1)
    for command in ("report", "forget"):
        for given in ("x" * 100_000, "20270115-090000\x1b[2J\x1b]0;pwned\x07", "../../etc/passwd\u202e"):
            done = run_cli(command, given, "--config", str(config))
            assert done.returncode == 1 and done.stdout == ""
            line, = done.stderr.splitlines()
            assert line.startswith("intervisie: no session with id '") and "ids look like 20261201-143000" in line, line
            assert len(line) < 200 and line.isprintable(), line
    assert (tmp_path / "data" / "records" / "20270115-090000.json").exists(), "nothing was forgotten"


def test_a_model_name_or_path_with_control_characters_is_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from assistant.cli import main

    config = str(config_file(tmp_path))
    assert main(["model", "check", "a\0b", "--config", config]) == 1
    out, err = capsys.readouterr()
    assert "\0" not in out + err and "a\\x00b" in out + err, (out, err)
    for name in ("a\x1b[31mb", "y" * 100_000, "y/" * 3000):
        for action in ("check", "install"):
            done = run_cli("model", action, name, "--config", config, "--models-dir", str(tmp_path / "models"))
            assert done.returncode == 1
            shown = [line for line in (done.stdout + done.stderr).splitlines() if "intervisie:" in line or "not found" in line]
            assert len(shown) == 1 and len(shown[0]) < 400 and shown[0].isprintable(), shown
            assert "Traceback" not in done.stderr
