"""The installer's files, read at the edge: settings, methods, locales and name lists.

Everything read here is checked and turned into the pure objects of :mod:`assistant.core`
(frozen settings, a :class:`~assistant.core.method.Method`, :class:`~assistant.core.phrases.Phrases`,
a :class:`~assistant.core.masking.NameMasker`); a file that cannot be read or is wrong
raises :class:`~assistant.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.core.masking import NameMasker, participant_patterns
from assistant.core.method import Method, method_from_toml, method_problems
from assistant.core.phrases import Phrases, phrases_from_toml
from assistant.core.settings import LANGUAGES, PROJECT_DIR, PrivacySettings, Settings, build_settings, merge_settings, shown
from assistant.errors import ConfigError

log = logging.getLogger(__name__)

SHIPPED_CONFIG = PROJECT_DIR / "config"
"""The configuration folder that comes with the program: defaults, methods, locales, names."""

CONFIG_DIR = Path(os.environ.get("INTERVISIE_CONFIG_DIR", SHIPPED_CONFIG))
"""Where the defaults, methods and locales are looked for first (``INTERVISIE_CONFIG_DIR``,
a folder of one's own); what is not there comes from :data:`SHIPPED_CONFIG`."""


def config_file(*parts: str) -> Path:
    """A file of the configuration folder: the one in :data:`CONFIG_DIR` when it is there,
    else the shipped one. So a folder of one's own holds only what it changes (one
    locale, say). A file that is there but cannot be read is an error, not skipped."""
    own = CONFIG_DIR.joinpath(*parts)
    return own if os.path.lexists(own) else SHIPPED_CONFIG.joinpath(*parts)


DEFAULT_CONFIG = config_file("default.toml")
"""The defaults, with a comment on every key."""

SHIPPED_LOCALES = SHIPPED_CONFIG / "locales"
"""The locale files the program was written with: what every locale must provide."""

_MAX_FILE_BYTES = 1_000_000
"""Configuration and locale files are small; a larger one is the wrong file."""
MAX_METHOD_BYTES = 256_000
"""A method file is a few kB (the shipped one 5 kB); a larger one is refused before it is parsed."""
_SHOWN_PATH_CHARS = 300
"""A path longer than this is cut short in a message (it came from the command line)."""
_PIPE_WAIT = 10.0
"""Seconds to wait for the next bytes of a settings file that is a pipe."""


def _read_bounded(path: Path, limit: int = _MAX_FILE_BYTES) -> bytes:
    """At most one byte more than ``limit`` of ``path``.

    Opened without blocking, so a FIFO nobody writes to reads as empty instead of hanging,
    and a pipe (``--config <(...)``) is waited for at most :data:`_PIPE_WAIT` seconds at a
    time. A device such as /dev/zero, which never ends, stops at the bound.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) or stat.S_ISCHR(os.fstat(fd).st_mode):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            try:
                chunk = os.read(fd, limit + 1 - size)
            except BlockingIOError:
                if not select.select([fd], [], [], _PIPE_WAIT)[0]:
                    raise TimeoutError from None
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_toml(path: Path, limit: int = _MAX_FILE_BYTES) -> dict[str, Any]:
    """Read a TOML file of at most ``limit`` bytes, turning every failure into a ConfigError."""
    where = _shown_path(path)
    if "\0" in str(path):
        raise ConfigError(shown(str(path)), None, "a file name cannot contain a NUL character; check the path")
    try:
        data = _read_bounded(path, limit)
    except FileNotFoundError:
        raise ConfigError(where, None, "file not found") from None
    except TimeoutError:
        raise ConfigError(where, None, f"nothing arrived from it in {_PIPE_WAIT:g} s; give the path of a TOML file") from None
    except OSError as exc:
        raise ConfigError(where, None, f"cannot read the file ({exc.strerror})") from None
    if len(data) > limit:
        raise ConfigError(where, None, f"the file is larger than {limit:,} bytes; check that it is the right file")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(where, None, "not valid UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, None, f"not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(where, None, "not valid TOML (lists or tables are nested too deeply)") from None
    except ValueError:  # tomllib reads a number of more than 4300 digits this way
        raise ConfigError(where, None, "not valid TOML (a number is too long)") from None


def _shown_path(path: Path) -> str:
    """A path as a message names it: whole, unless it is too long to be a real one."""
    text = str(path)
    return text if len(text) <= _SHOWN_PATH_CHARS else shown(text)


def user_config_path() -> Path | None:
    """The user's configuration file when none is given on the command line."""
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    for candidate in (Path(xdg) / "intervisie" / "config.toml", Path("/etc/intervisie/config.toml")):
        if candidate.is_file():
            return candidate
    return None


def load_settings(user_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the user's file, then command-line overrides (dotted keys)."""
    default_file = config_file("default.toml")
    raw = read_toml(default_file)
    defaults = build_settings(Settings, raw, default_file, "")
    del defaults  # the shipped file must be valid on its own; this proves it early
    if user_file is not None:
        merge_settings(raw, relative_to_file(read_toml(user_file), user_file), user_file, "")
    settings = build_settings(Settings, raw, user_file or default_file, "")
    if not overrides:
        return settings
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    # The files were fine: what is wrong now was given on the command line.
    return build_settings(Settings, raw, "command line", "")


_FILE_KEYS = (("data_dir",), ("method",), ("listening", "models_dir"), ("listening", "model"),
              ("listening", "model_en"), ("privacy", "names_file"))
"""The settings that name a file or folder (a model or method only when written as a path)."""


def relative_to_file(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """``table`` (a settings file's) with its relative paths made relative to the file's folder.

    ``data_dir = "sessions"`` in ``/home/me/intervisie/config.toml`` is
    ``/home/me/intervisie/sessions``, wherever the command was started. A model or method
    *name* (no "/", for a method no ".toml") stays a name; ``~`` and absolute paths stay
    as they are. A settings file that is a pipe (``--config <(...)``) has no folder: its
    paths stay relative to the current folder.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return table
    except OSError:
        return table
    folder = path.absolute().parent
    for keys in _FILE_KEYS:
        node: Any = table
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get(keys[-1]) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value or value.startswith("~") or Path(value).is_absolute():
            continue
        if keys[-1] in ("model", "model_en", "method") and "/" not in value and not value.endswith(".toml"):
            continue  # a name, not a path
        node[keys[-1]] = str(folder / value)
    return table


def method_path(name_or_path: str) -> Path:
    """A method given by name (a file in config/methods) or by path."""
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        return Path(name_or_path).expanduser()
    return config_file("methods", f"{name_or_path}.toml")


def method_files() -> list[Path]:
    """The method files of the methods folders (see :func:`method_folders`), one per file
    name (a folder of one's own before the shipped one), by name: ``intervisie method list``."""
    found: dict[str, Path] = {}
    for folder in method_folders():
        try:
            paths = sorted(folder.glob("*.toml"))
        except OSError:
            continue
        for path in paths:
            found.setdefault(path.name, path)
    return [found[key] for key in sorted(found)]


def method_problems_in(path: Path) -> tuple[dict[str, Any] | None, list[ConfigError]]:
    """A method file read and checked in every language: its parsed content (None when it
    cannot be read) and each problem found (see :func:`assistant.core.method.method_problems`)."""
    try:
        raw = read_toml(path, MAX_METHOD_BYTES)
    except ConfigError as exc:
        return None, [exc]
    return raw, method_problems(raw, path, LANGUAGES)


def load_method(name_or_path: str, language: str) -> Method:
    """Read and check a method file; raise ConfigError naming the key that is wrong."""
    path = method_path(name_or_path)
    try:
        exists = path.is_file()
    except (OSError, ValueError) as exc:  # a name too long for a file name, a NUL
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a file name"
        raise ConfigError(_shown_path(path), None, f"cannot read the file ({reason})") from None
    # A file that is there but cannot be read (a broken link) is said as such by read_toml.
    if not exists and "/" not in name_or_path and not os.path.lexists(path):
        known = sorted({p.stem for folder in (CONFIG_DIR, SHIPPED_CONFIG) for p in (folder / "methods").glob("*.toml")})
        raise ConfigError(path, None, f"no method named {shown(name_or_path)}; known methods: {', '.join(known)}")
    return method_from_toml(read_toml(path, MAX_METHOD_BYTES), path, language)


MAX_METHODS = 50
"""At most this many method files are read from the methods folders; a group chooses from
a handful (each loaded method costs a few kB)."""


def method_folders() -> list[Path]:
    """The folders whose method files a group can choose from: the configuration folder's
    own first (``INTERVISIE_CONFIG_DIR``), then the shipped one."""
    return list(dict.fromkeys([CONFIG_DIR / "methods", SHIPPED_CONFIG / "methods"]))


def installed_methods(configured: Method, language: str, folders: Iterable[Path] | None = None) -> list[Method]:
    """``configured`` first, then every other method file in ``folders`` (default
    :func:`method_folders`) by file name, each loaded in ``language``.

    A file of the same name in an earlier folder hides a later one, as :func:`config_file`
    does. A file that cannot be used (damaged, too large, a link, not a plain file,
    another user's or writable by anyone, an id that is already taken) is one warning
    naming it and why, and is left out: the others are still offered.
    """
    methods = [configured]
    ids = {configured.id}
    own = _same_file_key(Path(configured.path))
    files: dict[str, Path] = {}
    for folder in folders if folders is not None else method_folders():
        try:
            found = sorted(folder.glob("*.toml"))
        except OSError as exc:
            log.warning("cannot list the method folder %s (%s); its methods are not offered", _shown_path(folder),
                        exc.strerror)
            continue
        for path in found:
            files.setdefault(path.name, path)
    for name in sorted(files):
        path = files[name]
        if own is not None and _same_file_key(path) == own:
            continue  # the configured method itself
        if len(methods) >= MAX_METHODS:
            log.warning("more than %d method files: %s and the ones after it are not offered", MAX_METHODS,
                        _shown_path(path))
            break
        try:
            _check_method_file(path)
            method = method_from_toml(read_toml(path, MAX_METHOD_BYTES), path, language)
        except ConfigError as exc:
            log.warning("%s; this method is not offered", exc)
            continue
        if method.id in ids:
            log.warning("%s: the id %s is already used by another method; this method is not offered",
                        _shown_path(path), shown(method.id))
            continue
        ids.add(method.id)
        methods.append(method)
    return methods


def _same_file_key(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _check_method_file(path: Path) -> None:
    """ConfigError when a file found in a methods folder is not one to read: a link (it could
    point anywhere), not a plain file (a FIFO, a device), or one that another user could
    have put or changed there."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ConfigError(_shown_path(path), None, f"cannot read the file ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(_shown_path(path), None, "a link; give the file it points to as `method` to use it")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(_shown_path(path), None, "not a plain file")
    if info.st_mode & stat.S_IWOTH:
        raise ConfigError(_shown_path(path), None, f"any user may change it (mode {stat.S_IMODE(info.st_mode):04o})")
    try:
        folder_owner = os.stat(path.parent).st_uid
    except OSError:
        folder_owner = -1
    if info.st_uid not in (os.geteuid(), 0, folder_owner):
        raise ConfigError(_shown_path(path), None, f"it belongs to another user (uid {info.st_uid})")


def load_phrases(language: str, reference: str = "nl") -> Phrases:
    """Load a locale and check it has every key (with the same fields) as the reference.

    The reference is the shipped Dutch file, so a locale given in another configuration
    folder (``INTERVISIE_CONFIG_DIR``), Dutch ones included, is checked against what the
    program fills in; a wrong text is a ConfigError at start-up, not a crash mid-session.
    """
    path = config_file("locales", f"{language}.toml")
    texts = read_toml(path)
    return phrases_from_toml(texts, read_toml(SHIPPED_LOCALES / f"{reference}.toml"), language, path)


NAMES_FILE = config_file("names", "nl.txt")
"""The list of common Dutch first names (the shipped one, unless the configuration folder has its own)."""


def read_names(path: Path) -> list[str]:
    """The names in a name file: one per line, ``#`` starts a comment.

    Raises ConfigError (naming the file) when it cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "name file not found") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the name file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "the name file is not valid UTF-8 text") from None
    names = []
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def make_masker(settings: PrivacySettings, default_mask: str, names_file: Path | None = None) -> NameMasker | None:
    """The masker the settings ask for, or None when masking is switched off.

    A name file that cannot be read is logged as one error and left out: the other
    names are still masked and the session goes on.
    """
    if not settings.mask_names:
        log.info("names in notes are not masked ([privacy] mask_names = false)")
        return None
    names: list[Iterable[str] | str] = []
    files = [names_file or config_file("names", "nl.txt")]
    if settings.names_file:
        files.append(Path(settings.names_file).expanduser())
    for path in files:
        try:
            names.extend(read_names(path))
        except ConfigError as exc:
            log.error("%s; names from this file are not masked", exc)
    for participant in settings.participants:
        names.extend(participant_patterns(participant))
    masker = NameMasker(names, settings.mask or default_mask)
    log.debug("names in notes are masked (%d names)", masker.size)
    return masker
