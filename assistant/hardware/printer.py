"""The receipt printer: a slip rendered as ESC/POS by python-escpos, written with a time limit.

python-escpos (and Pillow, which it pulls in) is imported only when a slip is printed,
so a daemon without a printer keeps its memory. python-escpos turns the slip into bytes
(its ``Dummy`` printer: the code page, bold, size, alignment, the cut); the bytes are
then written here rather than by its ``File`` printer, because that one opens the path
with a plain blocking ``open()``: a FIFO nobody reads, or a printer that stopped taking
data, would hang the caller for ever. Here the device is opened non-blocking, and a
write that makes no progress for ``stall_seconds`` ends in :class:`PrinterError`.

Every problem (no device, no rights, a folder, a device that takes nothing or went away)
is one :class:`PrinterError` whose message says what is wrong and what to do.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import tempfile
import time
import unicodedata
from typing import Any

from assistant.core.slip import SlipLine, layout
from assistant.errors import DeviceError

log = logging.getLogger(__name__)

CODE_PAGE = "CP858"
"""The printer's code page for the slip: Latin-1's letters (é, ë, ï, ü, ç ...) and €.
python-escpos selects it with ESC t 19 (its default profile) before the text."""

STALL_SECONDS = 10.0
"""A printer that takes no byte for this long is given up (out of paper, jammed, off)."""


FAULTS = ("missing", "gone", "paper", "permission", "other")
"""What went wrong, in the words the group hears (a ``print_failed_*`` phrase each)."""


class PrinterError(DeviceError):
    """The slip could not be printed; the message is one line saying why and what to do,
    and :attr:`fault` one of :data:`FAULTS`."""

    def __init__(self, message: str, fault: str = "other") -> None:
        super().__init__(message)
        self.fault = fault


def printable(text: str) -> str:
    """``text`` as the printer can print it in :data:`CODE_PAGE`.

    Letters the code page has (é, ë, ï, ü ...) stay as they are. A run of characters it
    lacks is written in Latin letters by anyascii ("ł" → "l", "’" → "'", "…" → "...",
    Hangul romanized), so a name or a note in another script is still readable on the
    paper. Control and format characters (from a damaged or planted record) would be
    printer commands (ESC @ resets, GS V cuts): each becomes "?", never a command.
    """
    from anyascii import anyascii

    out: list[str] = []
    run: list[str] = []
    for char in text + "\n":
        if unicodedata.category(char).startswith("C"):
            if run:
                out.append(anyascii("".join(run)))
                run = []
            out.append("?" if char != "\n" else "")
            continue
        try:
            char.encode(CODE_PAGE)
        except UnicodeEncodeError:
            run.append(char)
            continue
        if run:
            out.append(anyascii("".join(run)) or "?")
            run = []
        out.append(char)
    return "".join(out)


def render(lines: list[SlipLine], width: int) -> bytes:
    """The slip as ESC/POS bytes: reset, the code page, the lines wrapped at ``width``, a cut."""
    printer = _dummy_printer()
    printer.hw("INIT")
    printer.charcode(CODE_PAGE)
    lines = [SlipLine(printable(line.text), line.style) for line in lines]
    for style, text in layout(lines, width):
        if style == "title":
            printer.set(align="center", bold=True, double_height=True)
        else:
            printer.set(align="left", bold=style == "heading", normal_textsize=True)
        printer.text(text + "\n")
    printer.cut()
    return bytes(printer.output)


def _dummy_printer() -> Any:
    """python-escpos's in-memory printer, imported now (not when the daemon starts).

    Its import makes a folder with ``mkdtemp()`` and writes a cache (a pickle) into it,
    and would load a pickle found there: the import runs with a private temporary folder
    of our own as the temporary folder, and that is removed afterwards, so nothing is
    left in /tmp and nothing planted is loaded.
    """
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="intervisie-escpos-") as private:
        tempfile.tempdir = private
        try:
            from escpos.printer import Dummy
        finally:
            tempfile.tempdir = saved
    return Dummy(profile="default")


def print_slip(lines: list[SlipLine], device: str, width: int, stall_seconds: float = STALL_SECONDS) -> int:
    """Print the slip on the printer at ``device``; the number of bytes written.

    PrinterError when it cannot be printed, never a hang: see :func:`write_bytes`.
    """
    data = render(lines, width)
    write_bytes(device, data, stall_seconds)
    log.info("printed a slip of %d bytes on %s", len(data), device)
    return len(data)


def probe(device: str) -> None:
    """Whether the printer at ``device`` could be written to now, without printing:
    opened for writing (non-blocking) and closed. PrinterError says why not."""
    write_bytes(device, b"")


def write_bytes(device: str, data: bytes, stall_seconds: float = STALL_SECONDS) -> None:
    """Write ``data`` to the printer's device file without ever blocking for long.

    Opened with O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of
    waiting for one, and a device that takes nothing is waited for with poll(), at most
    ``stall_seconds`` without progress. A regular file (the tests' printer) is appended to.
    """
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(device, flags)
    except OSError as exc:
        raise _error(device, exc) from None
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):  # not reached on Linux (EISDIR), kept for clarity
            raise _error(device, IsADirectoryError(errno.EISDIR, ""))
        _write_all(fd, device, memoryview(data), stall_seconds)
    finally:
        os.close(fd)


def _write_all(fd: int, device: str, view: memoryview, stall_seconds: float) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + stall_seconds
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            raise _error(device, exc) from None
        if written:
            view = view[written:]
            deadline = time.monotonic() + stall_seconds
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise PrinterError(
                f"the printer {device} took no data for {stall_seconds:g} s: is it out of paper, "
                "its cover open, or switched off?",
                "paper",
            )
        poller.poll(max(1, int(left * 1000)))


def _error(device: str, exc: OSError) -> PrinterError:
    """One line for the user: what is wrong with the printer at ``device``, and what to do."""
    code = exc.errno
    if code == errno.ENOENT:
        return PrinterError(
            f"no printer at {device}: plug it in and switch it on, or set [printer] device to its device file", "missing"
        )
    if code in (errno.EACCES, errno.EPERM):
        return PrinterError(
            f"no permission to write to the printer {device}: add this user to the group 'lp' (or the file's group)",
            "permission",
        )
    if code == errno.EISDIR:
        return PrinterError(
            f"{device} is a folder, not a printer: set [printer] device to the printer's device file (/dev/usb/lp0)"
        )
    if code == errno.ENXIO:
        return PrinterError(
            f"the printer {device} does not answer (nothing takes the data): plug it in and switch it on", "missing"
        )
    if code in (errno.ENODEV, errno.EIO, errno.EPIPE):
        return PrinterError(f"the printer {device} went away while printing: plug it back in", "gone")
    if code == errno.ENOSPC:
        return PrinterError(f"the printer {device} takes no more data: is it out of paper?", "paper")
    return PrinterError(f"cannot print on {device}: {exc.strerror or exc}")
