"""The ``intervisie`` command as the person at this terminal can type it, for every hint.

A hint such as "run `intervisie model install`" is only of use when that command works
where the user is. From a checkout the command lives in ``.venv/bin/intervisie``, which is
not on the PATH; on a Pi with the service it is ``/opt/intervisie/.venv/bin/intervisie``.
:func:`command` names the running program the way it can be run: plain ``intervisie``
when that is what the PATH finds, else its path (relative to the current folder when it
lies inside it, as the README writes ``.venv/bin/intervisie``).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

NAME = "intervisie"
"""The console script's name (``[project.scripts]`` in pyproject.toml)."""


def command(arguments: str = "") -> str:
    """The command that runs ``intervisie ARGUMENTS`` here, for a message to show."""
    return f"{program()} {arguments}".rstrip()


@functools.cache
def program() -> str:
    """How the running ``intervisie`` program is typed here (worked out once per process)."""
    script = running_script()
    if script is None:
        return NAME
    found = shutil.which(NAME)
    try:
        if found is not None and os.path.samefile(found, script):
            return NAME
    except OSError:
        pass
    try:
        cwd = Path.cwd()
    except OSError:  # the current folder was deleted: only the full path works
        return str(script)
    return shown_path(script, cwd)


def running_script() -> Path | None:
    """The ``intervisie`` script this process runs as, or the one beside its Python.

    A console script is started with its own path as ``sys.argv[0]``; ``python -m
    assistant`` (the tests, a developer) has the script in the virtual environment's
    ``bin`` folder next to the interpreter. None when neither is there.
    """
    first = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates = [first] if first is not None and first.name == NAME else []
    candidates.append(Path(sys.prefix) / "bin" / NAME)
    for candidate in candidates:
        try:
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate.absolute()
        except OSError:
            continue
    return None


def shown_path(script: Path, cwd: Path) -> str:
    """``script`` relative to ``cwd`` when it lies inside it (with a slash, so a shell
    runs it instead of searching the PATH), else its full path."""
    try:
        relative = script.relative_to(cwd)
    except ValueError:
        return str(script)
    text = str(relative)
    return text if "/" in text else f"./{text}"
