"""Service notifications to systemd: ready, status, watchdog, stopping.

Under ``Type=notify`` systemd passes the path of a datagram socket in ``$NOTIFY_SOCKET``
and reads newline-separated ``KEY=value`` assignments from it (sd_notify(3)). This is
the only socket the daemon opens itself, and it is a local one (AF_UNIX): the assistant
never talks to a network. Outside systemd the variable is unset and every call here
does nothing, so the daemon runs the same from a terminal.

A notification is never worth crashing for: a send that fails is logged once and the
daemon carries on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)


class Notifier:
    """Talks to systemd's notify socket ($NOTIFY_SOCKET); does nothing when it's not set."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._environ = environ
        self._address: bytes | None = None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._send_failed = False
        path = environ.get("NOTIFY_SOCKET", "")
        if not path:
            return
        if path.startswith("@"):
            # An abstract socket: the name starts with a NUL byte instead of "@".
            address = b"\0" + os.fsencode(path[1:])
        elif path.startswith("/"):
            address = os.fsencode(path)
        else:
            # Newer systemd may pass vsock: addresses; those are network sockets of a
            # kind, and a Pi has no use for them.
            log.warning("NOTIFY_SOCKET %r is not a local socket; not notifying systemd", path)
            return
        try:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError as exc:
            log.warning("cannot open the systemd notify socket: %s; not notifying systemd", exc)
            return
        self._address = address
        log.debug("notifying systemd through %s", path)

    @property
    def enabled(self) -> bool:
        """Whether notifications go to systemd (False outside systemd or after close)."""
        return self._socket is not None

    def ready(self, status: str = "") -> None:
        """Tell systemd that start-up is complete (READY=1), with an optional status line."""
        lines = ["READY=1"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        self._send(lines)

    def status(self, text: str) -> None:
        """Set the free-form status line shown by ``systemctl status``."""
        self._send([f"STATUS={_one_line(text)}"])

    def watchdog(self) -> None:
        """Tell systemd that the daemon is alive (WATCHDOG=1)."""
        self._send(["WATCHDOG=1"])

    def stopping(self) -> None:
        """Tell systemd that the daemon is shutting down (STOPPING=1)."""
        self._send(["STOPPING=1"])

    def extend_timeout(self, seconds: float) -> None:
        """Ask for ``seconds`` more before a start-up or shutdown timeout hits.

        Raises ValueError for a negative time (a programming error).
        """
        if seconds < 0:
            raise ValueError(f"a timeout extension cannot be negative, got {seconds!r}")
        self._send([f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}"])

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds, or None when there is no watchdog to ping.

        Taken from $WATCHDOG_USEC; when $WATCHDOG_PID is set it must be this process,
        otherwise the watchdog belongs to another process (a parent that spawned us).
        The caller should ping at half of this interval. Also None when notifications
        are off, since pings could not be delivered anyway.
        """
        if not self.enabled:
            return None
        raw_usec = self._environ.get("WATCHDOG_USEC", "")
        if not raw_usec:
            return None
        raw_pid = self._environ.get("WATCHDOG_PID", "")
        if raw_pid:
            try:
                pid = int(raw_pid)
            except ValueError:
                log.warning("ignoring the systemd watchdog: WATCHDOG_PID %r is not a number", raw_pid)
                return None
            if pid != os.getpid():
                return None
        try:
            usec = int(raw_usec)
        except ValueError:
            log.warning("ignoring the systemd watchdog: WATCHDOG_USEC %r is not a number", raw_usec)
            return None
        if usec <= 0:
            log.warning("ignoring the systemd watchdog: WATCHDOG_USEC %r is not positive", raw_usec)
            return None
        return usec / 1_000_000

    def close(self) -> None:
        """Close the socket; later notifications are silently dropped. Safe to repeat."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, lines: list[str]) -> None:
        with self._lock:
            if self._socket is None or self._address is None:
                return
            message = "\n".join(lines).encode("utf-8")
            try:
                self._socket.sendto(message, self._address)
            except OSError as exc:
                # systemd went away or restarted: nothing the daemon can do about it, and
                # a message per watchdog ping would flood the journal.
                if not self._send_failed:
                    log.warning("cannot notify systemd (%s); further failures are not logged", exc)
                    self._send_failed = True
                else:
                    log.debug("cannot notify systemd: %s", exc)


def _one_line(text: str) -> str:
    # Each line of a notification is one assignment: a newline would start a new one.
    return text.replace("\r", " ").replace("\n", " ")
