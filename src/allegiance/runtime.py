"""Process-level tuning for the served application (not for the CLI's short-lived commands).

glibc gives every thread that allocates under contention its own malloc arena (up to 8 × cores) and
keeps freed pages in each one. A server with a few dozen request threads therefore grows its RSS
for a long time before it plateaus — measured in ``bench/analysis.md`` (server memory): 21 MB per
100,000 mixed requests with the default, less than half of it with two arenas. ``mallopt`` must run
before the threads start, so :func:`limit_malloc_arenas` is called first thing in ``asgi.create_app``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

M_ARENA_MAX = -8  # from glibc's <malloc.h>

log = logging.getLogger(__name__)


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas; True when the cap was applied. A no-op (False) for ``arenas=0``
    and on a C library without ``mallopt`` (musl, macOS)."""
    if arenas <= 0:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = mallopt(M_ARENA_MAX, arenas) == 1
    if not applied:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused; malloc keeps its default arenas", arenas)
    return applied
