"""``intervisie export DIR [ID | --all]``: copy reports into a folder the user names.

The way the notes leave the device on purpose: onto a mounted USB stick, say. For each
session the HTML page and the Markdown report are written into DIR as
``intervisie-<id>.html`` and ``intervisie-<id>.md``. They are built from the session's
record, as ``intervisie report`` prints it (the record is the one source; the files in
``reports/`` are copies of it, and a report kept before name masking was switched on is
masked now), so a missing or damaged report file does not matter.

Nothing in DIR is ever overwritten or followed: each file is created with ``O_EXCL`` and
``O_NOFOLLOW`` relative to DIR itself, and a name that is taken (by a file, a folder or a
link) gets ``-2``, ``-3`` ... A file cut off by a full or failing stick is removed again.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from pathlib import Path

from assistant.cli.common import EXIT_CONFIG, EXIT_OK, echoed
from assistant.core.settings import LANGUAGES
from assistant.errors import JournalError

EXPORT_EXIT_CODES = """exit codes:
  0  every file was written (each is named on its own line)
  1  nothing or not everything was written: DIR is missing, not a folder, read-only, full
     or not yours to write; no session is kept, or no session has that id
  2  the command was given wrongly (an ID and --all together)"""

_MOST_TRIES = 1000
"""Names tried for one file (``-2`` up to this) before the folder counts as full of them."""


class ExportFailed(Exception):
    """A file could not be written into the folder: one line saying why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def add_export_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The ``export`` subcommand."""
    export = sub.add_parser(
        "export", parents=[common], help="copy session reports (HTML and Markdown) into a folder, such as a USB stick",
        epilog=EXPORT_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("folder", type=Path, metavar="DIR", help="the folder to copy into (it must exist)")
    export.add_argument("which", nargs="?", default="last", metavar="ID", help="a session id (default: the newest)")
    export.add_argument("--all", action="store_true", help="every kept session")
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Write the reports of one session (the newest by default) or all into DIR."""
    if args.all and args.which != "last":
        print("intervisie export: give the id of one session or --all, not both", file=sys.stderr)
        return EXIT_CONFIG
    from assistant.cli.sessions import _session_id, check_data_folder
    from assistant.config import load_phrases, load_settings, make_masker, user_config_path
    from assistant.storage.html import html_page
    from assistant.storage.records import find_record, read_records, records_dir
    from assistant.storage.report import build_report

    settings = load_settings(args.config or user_config_path())
    data = settings.data_path()
    check_data_folder(data)
    folder = _open_folder(args.folder)
    try:
        if args.all:
            records = [record for _path, record in read_records(data)]
            if not records:
                raise JournalError(f"no sessions have been kept yet (in {records_dir(data)}), or none can be read")
        else:
            records = [find_record(data, _session_id(args.which, also="last"))]
        written = 0
        for record in records:
            language = record.get("language")
            mask = load_phrases(language if language in LANGUAGES else "nl").say("name_mask")
            masker = make_masker(settings.privacy, mask)
            if masker is not None:
                record = masker.record(record)
            report = build_report(record, settings.report.low_confidence)
            for suffix, text in ((".html", html_page(report)), (".md", report.markdown())):
                try:
                    name = _write_new(folder, f"intervisie-{record['id']}", suffix, text.encode())
                except ExportFailed as exc:
                    done = f"; {written} file{'s' if written != 1 else ''} written before it" if written else ""
                    raise JournalError(f"{exc.message} (in {echoed(str(args.folder))}){done}") from None
                written += 1
                print(f"Wrote {echoed(str(args.folder / name), limit=None)}")
    finally:
        os.close(folder)
    return EXIT_OK


def _open_folder(path: Path) -> int:
    """The folder the user named, opened; JournalError (one line) when it cannot be used."""
    shown = echoed(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise JournalError(
            f"the folder {shown} does not exist: mount the USB stick or make the folder, then export again"
        ) from None
    except NotADirectoryError:
        raise JournalError(f"{shown} is not a folder: name a folder to copy the reports into") from None
    except OSError as exc:
        raise JournalError(f"cannot open the folder {shown}: {exc.strerror}") from None
    if not stat.S_ISDIR(os.fstat(fd).st_mode):  # pragma: no cover - O_DIRECTORY already refuses
        os.close(fd)
        raise JournalError(f"{shown} is not a folder: name a folder to copy the reports into")
    return fd


def _write_new(folder: int, stem: str, suffix: str, data: bytes) -> str:
    """Create a new file in the folder (never an existing name, never through a link) and
    write ``data`` into it; returns its name. ExportFailed saying why it could not be."""
    for number in range(1, _MOST_TRIES + 1):
        name = f"{stem}{suffix}" if number == 1 else f"{stem}-{number}{suffix}"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder)
        except FileExistsError:
            continue  # taken (a file, a folder or a link): the next number
        except OSError as exc:
            raise ExportFailed(_why(exc, name)) from None
        try:
            _give_to_folder_owner(fd, folder)
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            _remove(folder, name)  # a file cut off is worse than none
            raise ExportFailed(_why(exc, name)) from None
        os.close(fd)
        return name
    raise ExportFailed(f"{stem}{suffix} and {_MOST_TRIES - 1} numbered names after it are taken in the folder")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _give_to_folder_owner(fd: int, folder: int) -> None:
    """Run as root (``sudo intervisie export``), the file goes to whoever owns the folder,
    so the person whose stick or folder it is can open it."""
    if os.geteuid() != 0:
        return
    info = os.fstat(folder)
    try:
        os.fchown(fd, info.st_uid, info.st_gid)
    except OSError:
        pass  # a FAT stick has no owners: its mount options decide


def _remove(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass


def _why(exc: OSError, name: str) -> str:
    """One line for a file that could not be written."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the folder is full: {name} was not written; make room on it or use another folder"
    if exc.errno == errno.EROFS:
        return f"the folder is read-only (a write-protected stick?): {name} was not written"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write in the folder (as {_user()}): {name} was not written"
    return f"cannot write {name}: {exc.strerror or exc}"


def _user() -> str:
    from assistant.storage.files import user_name

    return user_name(os.geteuid())

