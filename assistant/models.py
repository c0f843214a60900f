"""Speech recognition models: install, list and check Vosk models.

A model is a folder in the models folder (``Settings.models_path()``), named like the
model (``vosk-model-small-nl-0.22``). Installing one is the only thing in the project
that uses the network, and only when the user asks for it (``intervisie model
install``): it fetches the Vosk model site's ``model-list.json``, downloads the model's
zip, checks its size and md5 against that list, unpacks it into a temporary folder next
to the final one, checks the unpacked model and renames it into place.

Until that rename nothing exists under the model's name, so an interrupted or corrupt
download leaves only hidden temporary entries (``.intervisie-partial-<pid>-...``); the
process removes its own on the way out (also after Ctrl-C), and the next install removes
those of a process that was killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import secrets
import shutil
import ssl
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, TextIO

from assistant import __version__
from assistant.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "vosk-model-small-nl-0.22"
"""The Dutch model the assistant uses unless configured otherwise (39 MB, Apache-2.0)."""

DEFAULT_SITE = "https://alphacephei.com/vosk/models"
"""The Vosk model site; its ``model-list.json`` describes every model it offers."""

MODEL_LIST = "model-list.json"
"""Name of the model site's list of models."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the model site to connect or to send the next bytes."""

LANGUAGE = "nl"
"""The language code of the models ``model list --available`` shows."""

REQUIRED_FILES = ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf")
"""Files every model needs (Vosk looks for ``am/final.mdl`` and ``conf/model.conf``)."""

GRAPHS = (("graph/HCLG.fst",), ("graph/HCLr.fst", "graph/Gr.fst"))
"""A model's decoding graph: a static one, or a runtime one (needed for grammars)."""

TEMP_PREFIX = ".intervisie-partial-"
"""Start of the names of the temporary entries an install makes in the models folder."""

_CHUNK = 64 * 1024
_LIST_LIMIT = 16 * 1024 * 1024
# Models are public data that the service (another user) must read, whatever the
# umask of the person installing them: these modes are set explicitly.
_DIR_MODE = 0o755
_FILE_MODE = 0o644
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_MD5 = re.compile(r"[0-9a-f]{32}\Z")


# ------------------------------------------------------------------ the model list


@dataclass(frozen=True)
class ModelInfo:
    """One model as the model site's list describes it."""

    name: str
    """Model name, which is also the name of its folder."""
    url: str
    """Where its zip archive is."""
    size: int
    """Size of the zip archive in bytes."""
    md5: str
    """md5 of the zip archive, lower-case hex."""
    lang: str = ""
    """Language code, e.g. ``nl``."""
    obsolete: bool = False
    """Whether the site marks it as superseded."""
    size_text: str = ""
    """The site's own rendering of the size, e.g. ``39M``."""


def list_url(site: str) -> str:
    """The address of the model list on a model site."""
    return site.rstrip("/") + "/" + MODEL_LIST


def fetch_model_list(
    site: str = DEFAULT_SITE, timeout: float = DEFAULT_TIMEOUT, hint: str = "check the network"
) -> list[ModelInfo]:
    """Download and parse the model site's list; ModelError (ending in ``hint``) on failure."""
    url = list_url(site)
    with _open(url, timeout, hint) as response:
        try:
            data = response.read(_LIST_LIMIT + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise ModelError(f"the model list from {_host(url)} broke off ({_describe(exc)}): {hint}") from None
    if len(data) > _LIST_LIMIT:
        raise ModelError(f"the model list at {url} is unreasonably large: is --site right?")
    return parse_model_list(data, url)


def parse_model_list(data: bytes, source: str) -> list[ModelInfo]:
    """The models in a ``model-list.json``; entries without a usable name, url, size or md5 are skipped.

    ``source`` is the list's address: relative model addresses are resolved against it.
    """
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ModelError(f"the model list at {source} is not valid JSON ({exc}): is --site right?") from None
    if not isinstance(raw, list):
        raise ModelError(f"the model list at {source} is not a list of models: is --site right?")
    models = []
    for entry in raw:
        info = _model_info(entry, source)
        if info is None:
            log.debug("skipping an unusable entry of %s: %r", source, entry)
        else:
            models.append(info)
    return models


def _model_info(entry: Any, source: str) -> ModelInfo | None:
    if not isinstance(entry, dict):
        return None
    name, url, md5, size = entry.get("name"), entry.get("url"), entry.get("md5"), entry.get("size")
    if not (isinstance(name, str) and _NAME.match(name) and isinstance(url, str) and isinstance(md5, str)):
        return None
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    md5 = md5.strip().lower()
    if not _MD5.match(md5):
        return None
    obsolete = entry.get("obsolete", False)
    lang = entry.get("lang", "")
    size_text = entry.get("size_text", "")
    return ModelInfo(
        name=name,
        url=urllib.parse.urljoin(source, url),
        size=size,
        md5=md5,
        lang=lang if isinstance(lang, str) else "",
        # The site writes it as the string "true" or "false".
        obsolete=obsolete is True or str(obsolete).lower() == "true",
        size_text=size_text if isinstance(size_text, str) else "",
    )


def find_model(models: list[ModelInfo], name: str, site: str = DEFAULT_SITE) -> ModelInfo:
    """The entry for ``name``; ModelError when the list has none."""
    for info in models:
        if info.name == name:
            return info
    raise ModelError(
        f"the model list of {site} has no model named {name!r}: "
        "`intervisie model list --available` shows the Dutch models it has"
    )


def dutch_models(models: list[ModelInfo]) -> list[ModelInfo]:
    """The models for :data:`LANGUAGE` (by their language code, else by their name)."""
    return [m for m in models if m.lang == LANGUAGE or (not m.lang and f"-{LANGUAGE}-" in m.name)]


# ------------------------------------------------------------------ checking a model


def check_structure(path: Path) -> list[str]:
    """What is missing from the model folder ``path``: one line per problem, empty when complete."""
    if not path.exists():
        return ["not found: install it with `intervisie model install`, or check the name or path"]
    if not path.is_dir():
        return ["not a folder (a model is a folder with am/, conf/ and graph/ in it)"]
    problems = [p for p in (_file_problem(path, rel) for rel in REQUIRED_FILES) if p]
    complete = [graph for graph in GRAPHS if all((path / rel).is_file() for rel in graph)]
    if complete:
        problems.extend(p for p in (_file_problem(path, rel) for rel in complete[0]) if p)
    elif (path / "graph/HCLr.fst").is_file():
        problems.append("missing graph/Gr.fst (graph/HCLr.fst needs it)")
    elif (path / "graph/Gr.fst").is_file():
        problems.append("missing graph/HCLr.fst (graph/Gr.fst needs it)")
    else:
        problems.append("missing graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)")
    return problems


def _file_problem(folder: Path, rel: str) -> str | None:
    path = folder / rel
    if not path.is_file():
        return f"missing {rel}"
    if not os.access(path, os.R_OK):
        return f"{rel} is not readable"
    if path.stat().st_size == 0:
        return f"{rel} is empty"
    return None


@dataclass(frozen=True)
class ModelCheck:
    """The result of :func:`check_model`."""

    path: Path
    """The model folder that was checked."""
    problems: tuple[str, ...]
    """One line per problem; empty when the model is fine."""
    loaded: bool | None
    """True: Vosk loaded it; False: Vosk failed to; None: not tried (no vosk, or incomplete)."""


def check_model(path: Path, load: bool = True) -> ModelCheck:
    """Check a model folder's structure and, when ``load`` and vosk imports, load it with Vosk."""
    problems = check_structure(path)
    loaded: bool | None = None
    if not problems and load:
        try:
            failure = load_with_vosk(path)
        except ImportError as exc:
            log.debug("vosk does not import (%s): the model is not loaded", exc)
        else:
            loaded = failure is None
            if failure:
                problems.append(failure)
    return ModelCheck(path, tuple(problems), loaded)


def load_with_vosk(path: Path) -> str | None:
    """Load the model with Vosk, then free it: None when it loads, else the reason.

    Raises ImportError when the vosk package is not there. Vosk's native code writes its
    errors to the process's stderr; they are caught and the last one becomes the reason.
    """
    from assistant.recognition import import_vosk

    vosk = import_vosk()
    failure: str | None = None
    with _captured_stderr() as captured:
        try:
            model = vosk.Model(str(path))
        except Exception as exc:  # vosk raises a bare Exception
            failure = str(exc) or type(exc).__name__
        else:
            try:
                # A damaged graph loads with the model and only fails here (observed).
                vosk.KaldiRecognizer(model, 16000)
            except Exception as exc:  # noqa: BLE001 (a bare Exception again)
                failure = str(exc) or type(exc).__name__
            del model
    if captured:
        log.debug("vosk said: %s", captured[0].strip())
    if failure is None:
        return None
    errors = [line for line in (captured[0] if captured else "").splitlines() if line.startswith("ERROR")]
    if errors:
        # "ERROR (VoskAPI:Model():model.cc:122) Folder ... does not contain model files. ..."
        failure = re.sub(r"^ERROR \(\S+\)\s*", "", errors[-1]).strip()
    # Kaldi quotes what it found, which in a damaged file is binary.
    failure = "".join(c if c.isprintable() else "?" for c in failure)
    if len(failure) > 300:
        failure = failure[:297] + "..."
    # OpenFst names the file it could not read on an earlier line ("Read failed: .../graph/HCLr.fst").
    said = captured[0] if captured else ""
    named = sorted({rel for rel in _model_files(path) if f"{path}/{rel}" in said or f"{path.resolve()}/{rel}" in said})
    where = f" (damaged: {', '.join(named)})" if named else ""
    return f"Vosk cannot load it: {failure}{where}; reinstall it with `intervisie model install --force`"


def _model_files(path: Path) -> list[str]:
    """Paths of the files in a model folder, relative to it."""
    try:
        return [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    except OSError:
        return []


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Redirect file descriptor 2 for the duration; the list then holds what was written."""
    captured: list[str] = []
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        saved = -1
    if saved < 0:
        yield captured  # no file descriptor 2 to redirect: let it be
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", errors="replace"))


# ------------------------------------------------------------------ installed models


@dataclass(frozen=True)
class InstalledModel:
    """A model folder in the models folder."""

    name: str
    """Folder name (the model's name)."""
    path: Path
    """The folder."""
    size: int
    """Bytes in its files."""
    problems: tuple[str, ...]
    """What :func:`check_structure` found missing; empty when complete."""


def installed_models(models_dir: Path) -> list[InstalledModel]:
    """The model folders in ``models_dir`` (hidden and temporary entries left out), by name."""
    if not models_dir.is_dir():
        return []
    found = []
    for entry in sorted(os.scandir(models_dir), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        path = Path(entry.path)
        found.append(InstalledModel(entry.name, path, folder_size(path), tuple(check_structure(path))))
    return found


def folder_size(path: Path) -> int:
    """Bytes in the files under ``path`` (symbolic links inside are not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def megabytes(size: int) -> str:
    """A size for people: ``39.1 MB``."""
    return f"{size / 1e6:.1f} MB"


# ------------------------------------------------------------------ progress


class ProgressBar:
    """Download progress on a text stream (stderr).

    On a terminal it redraws one line in place, at most ten times a second; anywhere
    else (a pipe, the journal) it writes a plain line at each quarter.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._label = label
        self._clock = clock
        self._tty = _isatty(stream)
        self._done = 0
        self._drawn_at: float | None = None
        self._drawn_done = -1
        self._quarter = 1
        if not self._tty:
            self._write(f"{label}: downloading {megabytes(total)}\n")

    def update(self, done: int) -> None:
        """Record that ``done`` bytes have arrived so far."""
        self._done = done
        if self._tty:
            now = self._clock()
            if self._drawn_at is None or now - self._drawn_at >= 0.1 or done >= self._total:
                self._draw()
                self._drawn_at = now
            return
        while self._quarter <= 4 and done * 4 >= self._quarter * self._total:
            self._write(f"{self._label}: {25 * self._quarter} % ({megabytes(done)} of {megabytes(self._total)})\n")
            self._quarter += 1

    def close(self) -> None:
        """End the progress line (on a terminal)."""
        if self._tty and self._drawn_at is not None:
            if self._drawn_done != self._done:
                self._draw()
            self._write("\n")
            self._drawn_at = None

    def _draw(self) -> None:
        self._drawn_done = self._done
        fraction = min(self._done / self._total, 1.0)
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"\r{self._label} [{bar}] {int(fraction * 100):3d} % {megabytes(self._done)} of {megabytes(self._total)}"
        self._write(line)

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


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
        models_dir.mkdir(parents=True, mode=_DIR_MODE)
        os.chmod(models_dir, _DIR_MODE)
    except OSError as exc:
        raise ModelError(
            f"cannot create the models folder {models_dir} ({_describe(exc)}): "
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
    if not _NAME.match(name):
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
        top = _unpack(archive, work.new_folder(), info)
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
            log.warning("cannot remove %s, left by an interrupted install: %s", entry.path, _describe(exc))
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
                log.warning("cannot remove the temporary %s: %s", path, _describe(error))

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
            raise ModelError(f"cannot write to the models folder {self._dir} ({_describe(exc)})") from None
        return path

    def new_folder(self) -> Path:
        """A new empty temporary folder."""
        path = self.reserve(".unpack")
        try:
            path.mkdir(mode=0o700)
        except OSError as exc:
            raise ModelError(f"cannot write to the models folder {self._dir} ({_describe(exc)})") from None
        return path


def _download(info: ModelInfo, dest: Path, progress: TextIO | None, timeout: float, hint: str) -> None:
    """Stream the archive into ``dest``, checking its length and md5 against the list."""
    host = _host(info.url)
    _require_space(dest.parent, info.size, "the download")
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    bar = ProgressBar(progress, info.size, info.name) if progress is not None else None
    log.debug("downloading %s (%d bytes)", info.url, info.size)
    try:
        with _open(info.url, timeout, hint) as response, open(dest, "wb") as out:
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
                    chunk = response.read1(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise ModelError(
                        f"the download from {host} broke off after {received} of {info.size} bytes "
                        f"({_describe(exc)}): try again"
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
                    raise ModelError(f"cannot write to {dest.parent} ({_describe(exc)})") from None
                if bar is not None:
                    bar.update(received)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise ModelError(f"cannot write to {dest.parent} ({_describe(exc)})") from None
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


def _unpack(archive: Path, dest: Path, info: ModelInfo) -> Path:
    """Unpack the archive into the empty folder ``dest``; returns the model folder in it."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"the download of {info.name} is not a zip archive ({exc}): try again") from None
    with zf:
        top, members = _plan(zf, info)
        _require_space(dest, sum(member.file_size for member, _ in members), "the unpacked model")
        for member, rel in members:
            path = dest.joinpath(*rel.parts)
            if member.is_dir():
                _make_dirs(dest, rel.parts)
            else:
                _make_dirs(dest, rel.parts[:-1])
                _extract(zf, member, path, info)
    if top != info.name:
        log.debug("the archive's folder is %s; installing it as %s", top, info.name)
    return dest / top


def _plan(zf: zipfile.ZipFile, info: ModelInfo) -> tuple[str, list[tuple[zipfile.ZipInfo, PurePosixPath]]]:
    """The archive's members as safe relative paths, and its single top folder."""
    members = []
    tops = set()
    for member in zf.infolist():
        problem = _unsafe(member)
        if problem:
            raise ModelError(f"refusing the archive of {info.name}: its entry {member.filename!r} {problem}")
        rel = PurePosixPath(member.filename)
        if not rel.parts:
            continue
        if len(rel.parts) == 1 and not member.is_dir():
            raise ModelError(
                f"refusing the archive of {info.name}: the file {member.filename!r} is outside its model folder"
            )
        tops.add(rel.parts[0])
        members.append((member, rel))
    if len(tops) != 1:
        found = ", ".join(sorted(tops)) or "nothing"
        raise ModelError(f"refusing the archive of {info.name}: expected one model folder in it, found {found}")
    return tops.pop(), members


def _unsafe(member: zipfile.ZipInfo) -> str | None:
    """Why an archive entry must not be unpacked, or None."""
    name = member.filename
    if "\x00" in name:
        return "has a NUL character in its name"
    if name.startswith("/"):
        return "is an absolute path"
    if "\\" in name:
        return "has a backslash in its name"
    if ".." in PurePosixPath(name).parts:
        return "points outside the folder (..)"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    return None


def _make_dirs(root: Path, parts: tuple[str, ...]) -> None:
    current = root
    for part in parts:
        current = current / part
        try:
            current.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            if not current.is_dir() or current.is_symlink():
                raise ModelError(f"the archive has both a file and a folder named {part!r}") from None
            continue
        except OSError as exc:
            raise ModelError(f"cannot unpack into {root.parent} ({_describe(exc)})") from None
        os.chmod(current, _DIR_MODE)


def _extract(zf: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path, info: ModelInfo) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE)
    except FileExistsError:
        raise ModelError(f"refusing the archive of {info.name}: {member.filename!r} is in it twice") from None
    except OSError as exc:
        raise ModelError(f"cannot unpack into {path.parent} ({_describe(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as out, zf.open(member) as source:
            os.fchmod(out.fileno(), _FILE_MODE)
            shutil.copyfileobj(source, out, _CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelError(f"the archive of {info.name} is damaged at {member.filename!r} ({exc}): try again") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise ModelError(f"cannot unpack {member.filename!r} of {info.name} ({exc})") from None
    except OSError as exc:
        raise ModelError(f"cannot unpack into {path.parent} ({_describe(exc)})") from None


def _move_into_place(top: Path, target: Path, work: _Workspace) -> None:
    """Rename the unpacked model to its final name, moving an old copy aside first."""
    os.chmod(top, _DIR_MODE)
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
        raise ModelError(f"cannot move the model into place at {target} ({_describe(exc)})") from None
    _fsync_dir(target.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _require_space(folder: Path, needed: int, what: str) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise ModelError(
            f"not enough free space in {folder} for {what}: it needs {megabytes(needed)}, "
            f"{megabytes(free)} is free"
        )


# ------------------------------------------------------------------ the network


def _open(url: str, timeout: float, hint: str) -> http.client.HTTPResponse:
    """Open an http(s) address; ModelError with a clear reason when it cannot be reached."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ModelError(f"refusing to download from {url!r}: only http and https addresses are used")
    request = urllib.request.Request(url, headers={"User-Agent": f"intervisie/{__version__}"})
    host = _host(url)
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ModelError(f"{host} answered {exc.code} {exc.reason} for {url}: try again later, or check --site") from None
    except urllib.error.URLError as exc:
        raise ModelError(f"cannot reach {host} ({_describe(exc.reason)}): {_with_clock(exc.reason, hint)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ModelError(f"cannot reach {host} ({_describe(exc)}): {_with_clock(exc, hint)}") from None
    return response


def _with_clock(reason: object, hint: str) -> str:
    # A Pi has no battery-backed clock: before it has the time, every certificate fails.
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"is the system clock right (`date`)? else {hint}"
    return hint


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _describe(reason: object) -> str:
    """A short reason for an OS or network error, without errno noise."""
    if isinstance(reason, ssl.SSLCertVerificationError) and reason.verify_message:
        return f"certificate not accepted: {reason.verify_message}"
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, http.client.IncompleteRead):
        return "the connection was cut"
    text = str(reason)
    return text or type(reason).__name__
