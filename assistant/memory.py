"""How the daemon asks glibc's malloc to keep less memory (a Pi has little of it).

Both calls do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import functools
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def fewer_malloc_arenas() -> None:
    """Let glibc's malloc share two heap arenas between all of the daemon's threads.

    By default each thread that allocates (PortAudio's callback, the recogniser, the
    renderer, the player...) may get an arena of its own, and each keeps the memory it
    freed; two arenas are plenty for this workload and keep about 1 MB less resident
    (see the benchmark).
    """
    libc = _libc()
    try:
        if libc is not None:
            libc.mallopt(_M_ARENA_MAX, 2)
    except AttributeError:
        pass


def give_back_free_memory(after: str) -> None:
    """Return the heap memory that is free again to the system, after a one-off burst of
    work (loading the speech model, rendering the phrases) that malloc would keep."""
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
    except AttributeError:
        return
    log.debug("gave free heap memory back after %s", after)
