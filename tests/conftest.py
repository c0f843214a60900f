"""Shared fixtures."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant import filesound

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
    """``--hardware``: run only the checks that need a real Pi (and its sound card)."""
    parser.addoption(
        "--hardware",
        action="store_true",
        help="run only the tests marked 'hardware', on a Raspberry Pi with its real button and speaker",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Use the file sound card unless the real one is wanted; runs before test modules import."""
    if not config.getoption("--hardware"):
        filesound.install(_AUDIO_DIR)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Hardware checks run only with ``--hardware``, and then alone (they use the real devices)."""
    hardware = config.getoption("--hardware")
    keep = [item for item in items if (item.get_closest_marker("hardware") is not None) == hardware]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@dataclass(frozen=True)
class AlsaFiles:
    """The files behind the default ALSA device."""

    out: Path
    """What was played: raw int16 mono frames at the stream's rate."""
    inp: Path
    """What recording returns: raw frames in the stream's format."""


@pytest.fixture
def alsa_files() -> Iterator[AlsaFiles]:
    """The default sound card's files, with out.raw emptied before the test.

    Close streams before reading out.raw: ALSA's file plugin buffers a little, and a
    stream left open from an earlier test would keep writing at its old offset.
    """
    files = AlsaFiles(out=_SOUND.out, inp=_SOUND.inp)
    files.out.write_bytes(b"")
    yield files


# ----------------------------------------------------------------------- end of audio
