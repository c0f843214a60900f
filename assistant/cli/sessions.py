"""``intervisie report`` and ``forget``: the kept sessions.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Any

from assistant.cli.common import EXIT_CONFIG, EXIT_OK, echoed
from assistant.command import command
from assistant.config import load_phrases, load_settings, user_config_path
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import LANGUAGES
from assistant.errors import JournalError


def cmd_report(args: argparse.Namespace) -> int:
    """Print a kept session's report (rebuilt from its record), or list the kept sessions."""
    # The report is in the language of the session, whatever --lang says now; the list
    # of sessions is for the person at the terminal, in the configured language (or --lang).
    settings = load_settings(args.config or user_config_path())
    import json

    from assistant.storage.records import find_record, session_list
    from assistant.storage.report import build_report

    data = settings.data_path()
    check_data_folder(data)
    if args.list:
        sessions = session_list(data)
        if not sessions:
            raise JournalError(f"no sessions have been kept yet (in {data / 'records'})")
        for item in sessions:
            if not item.get("damaged"):
                item["method_name"] = _method_name(str(item["method"] or ""), _language(item.get("language")))
        if args.json:
            print(json.dumps(sessions, ensure_ascii=False, indent=2))
            return EXIT_OK
        print_session_list(sessions, load_phrases(getattr(args, "lang", None) or settings.language))
        return EXIT_OK
    record = find_record(data, _session_id(args.which, also="last"))
    from assistant.config import make_masker

    masker = make_masker(settings.privacy, load_phrases(_language(record.get("language"))).say("name_mask"))
    if masker is not None:
        record = masker.record(record)  # a record kept before masking was switched on
    report = build_report(record, settings.report.low_confidence)
    if args.json:
        print(json.dumps(report.data(), ensure_ascii=False, indent=2))
    else:
        print(report.markdown(), end="")
    return EXIT_OK


YES, NO = "✓", "–"
"""A note kept or not, in the session list: the same in every language."""


def print_session_list(sessions: list[dict[str, Any]], phrases: Phrases) -> None:
    """The kept sessions as a table for the person at the terminal.

    The headings are in the configured language (the words of the report's own
    headings, from the locale), each session's method is named in that session's own
    language, and "phases" counts the phases gone through: "7/7" is a finished session.
    """
    words = phrases.table("report")
    heads = ["ID", *(words[key] for key in ("date", "method", "phase", "leervraag", "actieplan"))]
    rows = [heads]
    for item in sessions:
        if item.get("damaged"):
            rows.append([item["id"], "(damaged record)"])
            continue
        started = (item["started"] or "?")[:16].replace("T", " ")
        total = _phase_count(str(item["method"] or ""), _language(item.get("language")))
        done = item["phases"] if item["finished"] else max(item["phases"] - 1, 0)
        phases = f"{done}/{total}" if total else ("✓" if item["finished"] else str(done))
        yes = {True: YES, False: NO}
        rows.append([item["id"], started, item["method_name"], phases, yes[item["leervraag"]], yes[item["actieplan"]]])
    widths = [max(len(row[i]) for row in rows if len(row) == len(heads)) for i in range(len(heads))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


def _language(value: object) -> str:
    """A record's language when it is one the device speaks, else Dutch (the default)."""
    return str(value) if value in LANGUAGES else "nl"


@functools.cache
def _method(method_id: str, language: str) -> Method | None:
    from assistant.storage.report import _find_method

    return _find_method(method_id, language)


def _method_name(method_id: str, language: str) -> str:
    """The method's name in ``language``; its id (shown safely) when its file is not known here."""
    method = _method(method_id, language)
    return method.name if method is not None else echoed(method_id)


def _phase_count(method_id: str, language: str) -> int:
    """How many phases the method has; 0 when its file is not known here."""
    method = _method(method_id, language)
    return len(method.phases) if method is not None else 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete one kept session, or all of them, and say which (ids and dates only)."""
    if bool(args.which) == bool(args.all):
        print(
            f"intervisie forget: give the id of one session ('{command('report --list')}' shows them) or --all",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    settings = load_settings(args.config or user_config_path())
    from assistant.storage.retention import forget, forget_all, running_session

    data = settings.data_path()
    check_data_folder(data)
    deleted, failed = ([forget(data, _session_id(args.which))], []) if args.which else forget_all(data)
    for session in deleted:
        print(f"Deleted session {session.id} (started {session.date()}): {session.kinds()}.")
    if failed:
        ids = ", ".join(s.id for s in failed)
        raise JournalError(f"sessions {ids} could not be deleted (see the errors above); check the rights on {data}")
    if args.all:
        if not deleted:
            print(f"No sessions are kept in {data}: nothing to delete.")
        running = running_session(data)
        if running is not None:
            print(f"Session {running} is still running (or will be resumed after a restart) and was not deleted; "
                  "forget it when it has ended.")
    return EXIT_OK


def _session_id(which: str, also: str = "") -> str:
    """``which`` when it can name a session; else JournalError showing it back short and
    with its control characters escaped (it is the user's, and may be anything)."""
    from assistant.storage.records import is_session_id

    if which == also or is_session_id(which):
        return which
    raise JournalError(
        f"no session with id '{echoed(which)}': ids look like 20261201-143000 "
        f"('{command('report --list')}' shows the kept sessions)"
    )


def check_data_folder(data: Path) -> None:
    """Refuse (FolderRefused) a data folder, ``records/`` or ``reports/`` that is a link or shared.

    Nothing is made or changed here. Another user's folder is refused too, except for
    root: ``sudo intervisie report`` reads the service's sessions (install.sh says so),
    and reading or deleting makes no file that the service could not read.
    """
    from assistant.storage.files import checked_dir
    from assistant.storage.records import records_dir, reports_dir

    foreign_ok = os.geteuid() == 0
    if checked_dir(data, foreign_ok):
        for folder in (records_dir(data), reports_dir(data)):
            checked_dir(folder, foreign_ok)
