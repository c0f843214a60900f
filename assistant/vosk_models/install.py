"""Installing a Vosk model: download, verify, unpack, move into place.

It fetches the Vosk model site's ``model-list.json``, downloads the model's zip, checks
its size and md5 against that list, unpacks it into a temporary folder next to the final
one, checks the unpacked model and renames it into place.

Until that rename nothing exists under the model's name, so an interrupted or corrupt
download leaves only hidden temporary entries (``.intervisie-partial-<pid>-...``); the
process removes its own on the way out (also after Ctrl-C), and the next install removes
those of a process that was killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from assistant.errors import ModelError
from assistant.storage.files import fsync_dir
from assistant.terminal import is_tty
from assistant.vosk_models.catalog import (
    CHUNK,
    DEFAULT_MODEL,
    DEFAULT_SITE,
    DEFAULT_TIMEOUT,
    NAME_PATTERN,
    ModelInfo,
    describe_error,
    fetch_model_list,
    find_model,
    open_url,
    url_host,
)
from assistant.vosk_models.check import check_structure, megabytes, require_space
from assistant.vosk_models.unpack import DIR_MODE, unpack

log = logging.getLogger(__name__)

TEMP_PREFIX = ".intervisie-partial-"
"""Start of the names of the temporary entries an install makes in the models folder."""


class ProgressBar:
    """Download progress on a text stream (stderr).

    On a terminal a tqdm bar redraws one line in place, at most ten times a second;
    anywhere else (a pipe, the journal) it writes a plain line at each quarter.
    """

    BAR_FORMAT = "{l_bar}{bar}| {n_fmt}B of {total_fmt}B [{elapsed}<{remaining}, {rate_fmt}]"
    """What the bar shows: the label, the percentage, the bar, megabytes done and in all, speed."""

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._label = label
        self._done = 0
        self._quarter = 1
        self._bar: tqdm[Any] | None = None
        if is_tty(stream):
            self._bar = tqdm(
                total=total, desc=label, file=stream, unit="B", unit_scale=True, unit_divisor=1000,
                mininterval=0.1, bar_format=self.BAR_FORMAT,
            )
        else:
            self._write(f"{label}: downloading {megabytes(total)}\n")

    def update(self, done: int) -> None:
        """Record that ``done`` bytes have arrived so far."""
        if self._bar is not None:
            self._bar.update(done - self._done)
            self._done = done
            return
        self._done = done
        while self._quarter <= 4 and done * 4 >= self._quarter * self._total:
            self._write(f"{self._label}: {25 * self._quarter} % ({megabytes(done)} of {megabytes(self._total)})\n")
            self._quarter += 1

    def close(self) -> None:
        """End the progress line (on a terminal), showing where the download got to."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


# ------------------------------------------------------------------ installing


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install_model` did."""

    path: Path
    """The model's folder."""
    installed: bool
    """True: downloaded and installed now; False: a complete copy was already there."""
    downloaded: int = 0
    """Bytes downloaded."""


def offline_hint(models_dir: Path) -> str:
    """What to do when the model site cannot be reached."""
    return f"check the network, or copy the unpacked model folder to {models_dir}/"


def ensure_models_dir(models_dir: Path) -> Path:
    """The models folder, created (mode 0755) when it is missing."""
    if models_dir.is_dir():
        return models_dir
    if models_dir.exists():
        raise ModelError(f"{models_dir} is not a folder: set [listening] models_dir to a folder for the models")
    try:
        models_dir.mkdir(parents=True, mode=DIR_MODE)
        os.chmod(models_dir, DIR_MODE)
    except OSError as exc:
        raise ModelError(
            f"cannot create the models folder {models_dir} ({describe_error(exc)}): "
            "run as a user who may (sudo), or set [listening] models_dir"
        ) from None
    log.info("created the models folder %s", models_dir)
    return models_dir


def install_model(
    models_dir: Path,
    name: str = DEFAULT_MODEL,
    *,
    site: str = DEFAULT_SITE,
    force: bool = False,
    progress: TextIO | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> InstallResult:
    """Download, verify and unpack the model ``name`` into ``models_dir``.

    A complete copy already in place is kept (no network) unless ``force``. Progress
    goes to ``progress`` when given. Raises ModelError, with nothing left under the
    model's name unless a complete copy was already there; KeyboardInterrupt also leaves
    nothing behind.
    """
    if not NAME_PATTERN.match(name):
        raise ModelError(f"{name!r} is not a model name (like {DEFAULT_MODEL})")
    models_dir = ensure_models_dir(models_dir)
    remove_stale(models_dir)
    target = models_dir / name
    if target.exists() or target.is_symlink():
        problems = check_structure(target)
        if not problems and not force:
            return InstallResult(target, installed=False)
        if problems:
            log.warning("%s is incomplete (%s): installing it again", target, "; ".join(problems))
    if not os.access(models_dir, os.W_OK | os.X_OK):
        raise ModelError(
            f"cannot write to the models folder {models_dir}: run as a user who may (sudo), "
            "or set [listening] models_dir"
        )
    hint = offline_hint(models_dir)
    info = find_model(fetch_model_list(site, timeout, hint), name, site)
    if info.obsolete:
        log.warning("the model site marks %s as obsolete", name)
    with _Workspace(models_dir) as work:
        archive = work.new_file(".zip")
        _download(info, archive, progress, timeout, hint)
        top = unpack(archive, work.new_folder(), info)
        problems = check_structure(top)
        if problems:
            raise ModelError(
                f"the archive {info.url} does not hold a usable Vosk model ({'; '.join(problems)}); nothing was installed"
            )
        _move_into_place(top, target, work)
    log.debug("installed %s in %s", name, target)
    return InstallResult(target, installed=True, downloaded=info.size)


def remove_stale(models_dir: Path) -> list[Path]:
    """Remove the temporary entries of installs that are no longer running; returns them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(models_dir))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        pid_text = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
        pid = int(pid_text) if pid_text.isdigit() else None
        # This process has made none yet, so one with its own number is an old one.
        if pid is not None and pid != os.getpid() and _process_alive(pid):
            log.debug("leaving %s: process %d may still be installing", entry.path, pid)
            continue
        try:
            _remove(Path(entry.path))
        except OSError as exc:
            log.warning("cannot remove %s, left by an interrupted install: %s", entry.path, describe_error(exc))
            continue
        log.info("removed %s, left by an interrupted install", entry.path)
        removed.append(Path(entry.path))
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class _Workspace:
    """Temporary entries in the models folder, all removed when the block ends."""

    def __init__(self, models_dir: Path) -> None:
        self._dir = models_dir
        self._paths: list[Path] = []

    def __enter__(self) -> _Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        for path in reversed(self._paths):
            try:
                _remove(path)
            except OSError as error:
                log.warning("cannot remove the temporary %s: %s", path, describe_error(error))

    def reserve(self, suffix: str) -> Path:
        """A fresh temporary name (nothing is created), removed at the end if it exists then."""
        path = self._dir / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{suffix}"
        self._paths.append(path)
        return path

    def new_file(self, suffix: str) -> Path:
        """A new empty temporary file."""
        path = self.reserve(suffix)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise ModelError(f"cannot write to the models folder {self._dir} ({describe_error(exc)})") from None
        return path

    def new_folder(self) -> Path:
        """A new empty temporary folder."""
        path = self.reserve(".unpack")
        try:
            path.mkdir(mode=0o700)
        except OSError as exc:
            raise ModelError(f"cannot write to the models folder {self._dir} ({describe_error(exc)})") from None
        return path


def _download(info: ModelInfo, dest: Path, progress: TextIO | None, timeout: float, hint: str) -> None:
    """Stream the archive into ``dest``, checking its length and md5 against the list."""
    host = url_host(info.url)
    require_space(dest.parent, info.size, "the download")
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    bar = ProgressBar(progress, info.size, info.name) if progress is not None else None
    log.debug("downloading %s (%d bytes)", info.url, info.size)
    try:
        with open_url(info.url, timeout, hint) as response, open(dest, "wb") as out:
            declared = (response.headers.get("Content-Length") or "").strip()
            if declared.isdigit() and int(declared) != info.size:
                raise ModelError(
                    f"{host} offers {info.name} with {int(declared)} bytes but its model list says {info.size}: "
                    "the list or the file is out of date; try again later"
                )
            while True:
                try:
                    # read1: what has arrived (up to a chunk), so progress and the file
                    # keep up with a slow line instead of waiting for a full chunk.
                    chunk = response.read1(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise ModelError(
                        f"the download from {host} broke off after {received} of {info.size} bytes "
                        f"({describe_error(exc)}): try again"
                    ) from None
                if not chunk:
                    break
                received += len(chunk)
                if received > info.size:
                    raise ModelError(
                        f"{host} sends more than the {info.size} bytes its model list gives for {info.name}: try again later"
                    )
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise ModelError(f"cannot write to {dest.parent} ({describe_error(exc)})") from None
                if bar is not None:
                    bar.update(received)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise ModelError(f"cannot write to {dest.parent} ({describe_error(exc)})") from None
    finally:
        if bar is not None:
            bar.close()
    if received < info.size:
        raise ModelError(
            f"the download from {host} stopped after {received} of {info.size} bytes: "
            f"the connection was cut; try again"
        )
    if digest.hexdigest() != info.md5:
        raise ModelError(
            f"the download of {info.name} is corrupt (md5 {digest.hexdigest()}, the model list says {info.md5}): try again"
        )


def _move_into_place(top: Path, target: Path, work: _Workspace) -> None:
    """Rename the unpacked model to its final name, moving an old copy aside first."""
    os.chmod(top, DIR_MODE)
    old: Path | None = None
    try:
        if target.exists() or target.is_symlink():
            # A folder cannot be renamed over a non-empty one: the old copy goes to a
            # temporary name first (removed with the workspace).
            old = work.reserve(".old")
            os.rename(target, old)
        os.rename(top, target)
    except OSError as exc:
        if old is not None and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(old, target)
        raise ModelError(f"cannot move the model into place at {target} ({describe_error(exc)})") from None
    with contextlib.suppress(OSError):
        fsync_dir(target.parent)
