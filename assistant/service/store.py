"""The session store: where the daemon keeps sessions, and what it does when the disk fails.

It owns the journal of the running session, writes the record and the report when a
session ends, applies retention, and finds what the next session needs from earlier ones
(the previous actieplan, a report the power cut off). A failing data disk (full,
read-only, broken, not writable) never stops the session: the first failure is reported
once (:attr:`SessionStore.warning_due`, which the daemon says), everything is kept in
memory, and saving is retried quietly every :data:`RETRY_SECONDS` until it works again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.record import SessionRecord, accepted_text
from assistant.core.settings import Settings
from assistant.errors import JournalError
from assistant.storage.journal import Journal, blocked_name
from assistant.storage.records import read_records, records_dir, reports_dir
from assistant.storage.report import write_report
from assistant.storage.retention import apply_retention, delete_session, kept_sessions

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
"""How often a failing data disk is tried again, in real seconds (quietly)."""
PREVIOUS_RECORDS = 20
"""How many of the newest records are searched for the previous actieplan."""


class SessionStore:
    """The journal, records and reports of the daemon's sessions; works without a journal."""

    def __init__(
        self,
        journal: Journal | None,
        settings: Settings,
        phrases: Phrases,
        method: Method,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        """None when the data folder could not be opened: nothing is kept or resumed."""
        self.settings = settings
        self.phrases = phrases
        self.method = method
        self._wall = wall
        self.down = False
        """A journal, record or report write failed: kept in memory, retried quietly."""
        self.retry_at = 0.0
        """``time.monotonic()`` of the next quiet retry while :attr:`down`."""
        self.warning_due = False
        """The storage warning is due (the daemon says it after the current event's effects)."""
        self._unwritten_reports: list[SessionRecord] = []
        """Records whose report could not be written yet."""
        self._previous = ""
        self._previous_stamp: int | None = None
        """The previous actieplan, and the records folder's modification time it was read at."""

    # --- the running session ------------------------------------------------------

    def start(self, header: dict[str, Any]) -> str | None:
        """Start the journal of a new session; its id (also when only kept in memory)."""
        if self.journal is None:
            return None
        try:
            return self.journal.start(header)
        except JournalError as exc:
            self.failed(exc)
            return self.journal.session_id  # the session is kept in memory under it

    def append(self, entry: dict[str, Any]) -> None:
        """Journal one event line."""
        if self.journal is None:
            return
        try:
            self.journal.append(entry)
        except JournalError as exc:
            self.failed(exc)

    def keep(self, record: SessionRecord) -> bool:
        """A session ended: keep its record, drop its journal, write its report.

        True when the record is on disk; False when it is only in memory (written when
        the disk works again) or there is no journal.
        """
        saved = False
        if self.journal is not None:
            try:
                self.journal.finish(record)
                saved = True
            except JournalError as exc:
                self.failed(exc)  # kept in memory and written when the disk works again
        self.write_report(record)
        return saved

    # --- reports and earlier sessions ---------------------------------------------

    def write_report(self, record: SessionRecord) -> None:
        """Write the session's report next to its record (it can be rebuilt from the record)."""
        if self.journal is None:
            return
        if self.down:
            self._unwritten_reports.append(record)
            return
        try:
            self._write_report(record)
        except JournalError as exc:
            if blocked_name(exc):
                return  # said by _write_report; the disk works, and later sessions' reports are written
            self._unwritten_reports.append(record)
            self.failed(exc)
        except Exception:  # noqa: BLE001 - whatever goes wrong with the report, the group's next session goes on
            log.exception("the report of session %s could not be written", record.get("id"))

    def _write_report(self, record: SessionRecord) -> None:
        """Write one report; JournalError when it cannot be written.

        When its file name is blocked (a folder of that name), that one report is given up
        with one line instead: it would hold up every later report. Its record is kept.
        """
        assert self.journal is not None
        try:
            write_report(self.journal.data_dir, record, self.settings.report.low_confidence, self.phrases, self.method)
        except JournalError as exc:
            if blocked_name(exc):
                log.error("%s; the report of session %s is not written (its record is kept: 'intervisie report %s' "
                          "shows it)", exc, record.get("id"), record.get("id"))
            raise

    def report_missing(self) -> None:
        """Write the newest session's report if the power went between its record and its report."""
        if self.journal is None or not self.journal.usable():
            return
        newest = read_records(self.journal.data_dir, newest=1)
        if not newest:
            return
        path, record = newest[0]
        folder = reports_dir(self.journal.data_dir)
        try:
            # All three: the power can go between one report file and the next.
            if all((folder / f"{path.stem}{suffix}").exists() for suffix in (".md", ".json", ".html")):
                return
        except OSError:
            return
        if record.get("id") == path.stem:
            log.info("the report of session %s is missing (the power went before it was written)", path.stem)
            self.write_report(record)

    def previous_actieplan(self) -> str:
        """The kept actieplan of the newest kept session that has one, or "".

        Read from disk again whenever the records folder changed (``intervisie forget``
        in another process, retention), else remembered: it is asked at every start press.
        """
        if self.journal is None or not self.journal.usable():
            return ""
        folder = records_dir(self.journal.data_dir)
        try:
            stamp: int | None = os.stat(folder).st_mtime_ns
        except OSError:
            stamp = None
        if stamp is not None and stamp == self._previous_stamp:
            return self._previous
        self._previous, self._previous_stamp = "", stamp
        for _path, record in reversed(read_records(self.journal.data_dir, newest=PREVIOUS_RECORDS)):
            text = accepted_text(record, "actieplan")
            if text:
                self._previous = text
                break
        return self._previous

    def forget_expired(self) -> None:
        """Delete the records and reports older than the retention period."""
        if self.journal is not None and self.journal.usable():
            apply_retention(self.journal.data_dir, self.settings.privacy.retention_days, self._wall())

    def forget(self, session_id: str) -> bool:
        """Delete a finished session's record and reports now, on disk and in memory
        (``[privacy] keep_after_print = false``); True when nothing of it is left."""
        if self.journal is None:
            return True
        self.journal.drop_unsaved(session_id)
        self._unwritten_reports = [r for r in self._unwritten_reports if r.get("id") != session_id]
        if not self.journal.usable():
            return True  # a refused folder: nothing of the session was written there
        try:
            sessions = [s for s in kept_sessions(self.journal.data_dir) if s.id == session_id]
        except JournalError as exc:
            log.error("cannot delete session %s after printing: %s", session_id, exc)
            return False
        failed = [path for session in sessions for path in delete_session(session)]
        if failed:
            return False  # each file was logged by delete_session
        log.info("deleted session %s after its slip was printed ([privacy] keep_after_print = false)", session_id)
        return True

    # --- a failing data disk ------------------------------------------------------

    def failed(self, exc: JournalError) -> None:
        """A write failed: report it once, keep everything in memory, retry quietly."""
        self.retry_at = time.monotonic() + RETRY_SECONDS
        if self.down:
            log.debug("still cannot save: %s", exc)
            return
        self.down = True
        self.warning_due = True
        if self.journal is not None and self.journal.refused_at_start and not self.journal.usable():
            # Its reason was logged at start, in one line.
            log.error(
                "cannot save the session in a refused data folder; it goes on and keeps everything in memory, "
                "and saves it once the folder is mended"
            )
            return
        # The session goes on: the group keeps its timekeeper, and nothing is dropped.
        log.error(
            "cannot save the session: %s; it goes on and keeps everything in memory, and saves it when the "
            "disk works again (until then it cannot be resumed after a power cut)", exc,
        )

    def retry(self, final: bool = False) -> bool:
        """Try to write what was kept in memory; True when saving works again."""
        assert self.journal is not None
        lines, records = self.journal.unsaved_lines, len(self.journal.unsaved_records)
        try:
            self.journal.flush()
            self._write_unwritten_reports()
        except JournalError as exc:
            self.retry_at = time.monotonic() + RETRY_SECONDS
            if final:
                why = "the data folder is still refused" if not self.journal.usable() else f"the disk still fails ({exc})"
                log.error(
                    "stopping while %s: %d journal lines, %d records and %d reports were not saved",
                    why, self.journal.unsaved_lines, len(self.journal.unsaved_records), len(self._unwritten_reports),
                )
            else:
                log.debug("still cannot save: %s", exc)
            return False
        self.down = False
        self.warning_due = False
        log.info(
            "saving works again: wrote what was missed (%d journal lines, %d records) to %s",
            lines, records, self.journal.data_dir,
        )
        return True

    def _write_unwritten_reports(self) -> None:
        """Write the reports kept back; one whose name is blocked never holds up the others.

        Raises JournalError (the first) when the disk still fails.
        """
        left: list[SessionRecord] = []
        first: JournalError | None = None
        for record in self._unwritten_reports:
            try:
                self._write_report(record)
            except JournalError as exc:
                if not blocked_name(exc):
                    left.append(record)
                    first = first or exc
        self._unwritten_reports = left
        if first is not None:
            raise first
