"""Checking a model folder and listing the installed models.

A model is a folder in the models folder (``Settings.models_path()``), named like the
model (``vosk-model-small-nl-0.22``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.audio.model import REQUIRED_FILES
from assistant.command import command
from assistant.errors import ModelError

log = logging.getLogger(__name__)


GRAPHS = (("graph/HCLG.fst",), ("graph/HCLr.fst", "graph/Gr.fst"))
"""A model's decoding graph: a static one, or a runtime one (needed for grammars)."""


def check_structure(path: Path) -> list[str]:
    """What is missing from the model folder ``path``: one line per problem, empty when complete."""
    if not path.exists():
        return [f"not found: install it with `{command('model install')}`, or check the name or path"]
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
    from assistant.audio.model import import_vosk

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
    return f"Vosk cannot load it: {failure}{where}; reinstall it with `{command('model install --force')}`"


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


def require_space(folder: Path, needed: int, what: str) -> None:
    """Raise :class:`ModelError` when ``folder``'s disk has less than ``needed`` bytes free for ``what``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise ModelError(
            f"not enough free space in {folder} for {what}: it needs {megabytes(needed)}, "
            f"{megabytes(free)} is free"
        )
