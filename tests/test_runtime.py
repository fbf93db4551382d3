"""The served process caps glibc's malloc arenas (see ``allegiance.runtime``)."""

from __future__ import annotations

import platform

import pytest

from allegiance.runtime import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_the_arena_cap_is_applied_on_glibc() -> None:
    assert limit_malloc_arenas(2) is True


def test_zero_leaves_malloc_alone() -> None:
    assert limit_malloc_arenas(0) is False
