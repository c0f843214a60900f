"""``intervisie report`` and ``forget``: the kept sessions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from assistant.cli.common import EXIT_CONFIG, EXIT_OK, echoed
from assistant.command import command
from assistant.config import load_phrases, load_settings, user_config_path
from assistant.core.settings import LANGUAGES
from assistant.errors import JournalError


def cmd_report(args: argparse.Namespace) -> int:
    """Print a kept session's report (rebuilt from its record), or list the kept sessions."""
    # The report is in the language of the session, whatever --lang says now.
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
        if args.json:
            print(json.dumps(sessions, ensure_ascii=False, indent=2))
            return EXIT_OK
        print(f"{'ID':<18}  {'STARTED':<16}  {'METHOD':<12}  {'STATUS':<10}  {'LEERVRAAG':<9}  ACTIEPLAN")
        for item in sessions:
            if item.get("damaged"):
                print(f"{item['id']:<18}  (damaged record)")
                continue
            started = (item["started"] or "?")[:16].replace("T", " ")
            status = "finished" if item["finished"] else "unfinished"
            yes = {True: "yes", False: "no"}
            print(
                f"{item['id']:<18}  {started:<16}  {str(item['method']):<12}  {status:<10}  "
                f"{yes[item['leervraag']]:<9}  {yes[item['actieplan']]}"
            )
        return EXIT_OK
    record = find_record(data, _session_id(args.which, also="last"))
    from assistant.config import make_masker

    language = record.get("language") if record.get("language") in LANGUAGES else "nl"
    masker = make_masker(settings.privacy, load_phrases(str(language)).say("name_mask"))
    if masker is not None:
        record = masker.record(record)  # a record kept before masking was switched on
    report = build_report(record, settings.report.low_confidence)
    if args.json:
        print(json.dumps(report.data(), ensure_ascii=False, indent=2))
    else:
        print(report.markdown(), end="")
    return EXIT_OK


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
