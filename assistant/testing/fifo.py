"""A microphone made of a FIFO, written at real time by a thread of this process.

ALSA's ``file`` plugin (see :mod:`assistant.filesound`) records from its ``infile``. A
regular file does not work as a microphone: the plugin reads it thousands of times
faster than real time and then repeats stale data from its ring buffer. A FIFO that is
written one stream block per write delivers exactly what is written, when it is
written. The plugin opens the FIFO whenever a capture stream opens (also when PortAudio
scans the devices), which blocks until there is a writer, so :class:`FifoMicrophone`
keeps one open (``O_RDWR``) from the moment it is made: make it before sounddevice is
imported.
"""

from __future__ import annotations

import array
import collections
import fcntl
import os
import select
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 16000
"""Samples per second the microphone delivers (int16 mono)."""
BLOCK_SECONDS = 0.1
"""One write into the FIFO: one read of the capture stream."""
BLOCK_BYTES = 2 * round(RATE * BLOCK_SECONDS)
"""Bytes in one block (3200: a write this small is atomic on a pipe)."""
CATCH_UP_SECONDS = 0.3
"""After a stall (a hold, a reader that stopped) at most this much audio is written in a burst."""



def unread_bytes(fd: int) -> int:
    """How many bytes written to the FIFO ``fd`` its reader has not read yet."""
    waiting = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, waiting)
    return waiting[0]


class FifoMicrophone:
    """A capture device's ``infile`` as a FIFO that a thread keeps writing at real time.

    Between clips it writes a quiet room: ``quiet``, either one block of bytes written
    again and again, or a function giving the bytes of the n-th block written (n counts
    every block, clips included). :meth:`say` writes a clip instead; :meth:`hold` stops
    writing altogether, so whoever reads the microphone waits in its read and captures
    nothing. A block the FIFO has no room for is tried again, never dropped.
    """

    def __init__(self, path: Path, quiet: bytes | Callable[[int], bytes], *, start: bool = True) -> None:
        """Make ``path`` a FIFO (replacing what is there) and open it; write at once if ``start``."""
        if isinstance(quiet, bytes) and len(quiet) != BLOCK_BYTES:
            raise ValueError(f"the quiet room is written one block at a time: {BLOCK_BYTES} bytes, not {len(quiet)}")
        self.path = path
        self.quiet = quiet
        """The quiet room, as given."""
        path.unlink(missing_ok=True)
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR)  # a writer, so ALSA's open() of the FIFO never blocks
        self._lock = threading.Condition()
        self._clip: collections.deque[tuple[bytes, int, Callable[[int], None] | None]] = collections.deque()
        self._quiet = True  # write the quiet room when no clip is queued
        self._busy = False  # a block is on its way into the FIFO
        self._closed = False
        self._written = 0  # blocks written so far
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    def start(self) -> None:
        """Start writing (the quiet room until a clip is said); does nothing when already started."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="microphone", daemon=True)
        self._thread.start()

    def hold(self, timeout: float = 10.0) -> None:
        """Stop writing, and wait until the reader has read everything written."""
        with self._lock:
            self._quiet = False
            if not self._lock.wait_for(lambda: not self._busy and not self._clip, timeout):
                raise TimeoutError(f"the microphone's writer did not stop within {timeout:g} s")
        deadline = time.monotonic() + timeout
        while unread_bytes(self.fd):
            if time.monotonic() >= deadline:
                raise TimeoutError("the microphone is not read")
            time.sleep(0.01)
        time.sleep(0.1)  # the reader's callback runs right after the read

    def say(
        self,
        samples: npt.NDArray[np.int16],
        timeout: float | None = 30.0,
        on_block: Callable[[int], None] | None = None,
    ) -> None:
        """Write these samples (whole blocks) at real time, then the quiet room again.

        Returns when the last block is in the FIFO; ``on_block(i)`` is called right after
        the clip's block ``i`` is written. ``timeout`` None waits as long as it takes.
        """
        data = samples.astype("<i2").tobytes()
        if len(data) % BLOCK_BYTES:
            raise ValueError(f"whole blocks only ({BLOCK_BYTES} bytes): each write is one read of the stream")
        with self._lock:
            self._clip.extend(
                (data[start : start + BLOCK_BYTES], index, on_block)
                for index, start in enumerate(range(0, len(data), BLOCK_BYTES))
            )
            self._quiet = True
            self._lock.notify_all()
            if not self._lock.wait_for(lambda: not self._clip, timeout):
                raise TimeoutError("the microphone stopped being read")

    def close(self) -> None:
        """Stop the writer and close the FIFO (the file stays)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(5)
        os.close(self.fd)

    def _block(self, index: int) -> bytes:
        return self.quiet if isinstance(self.quiet, bytes) else self.quiet(index)

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or bool(self._clip) or self._quiet)
                if self._closed:
                    return
                item = self._clip[0] if self._clip else None
                index = self._written
                self._busy = True
            block = item[0] if item is not None else self._block(index)
            now = time.monotonic()
            due = max(due, now - CATCH_UP_SECONDS)  # after a hold or a stall: no long burst to catch up
            if due > now:
                time.sleep(due - now)
            _readable, writable, _errors = select.select([], [self.fd], [], 0.2)
            if writable:
                os.write(self.fd, block)  # one block: atomic on a pipe
                due += BLOCK_SECONDS
            if writable and item is not None and item[2] is not None:
                item[2](item[1])
            with self._lock:
                if writable:
                    self._written += 1
                    if item is not None:
                        self._clip.popleft()
                self._busy = False
                self._lock.notify_all()
