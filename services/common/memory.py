"""Handing the C heap's free pages back to the OS (glibc's `malloc_trim`).

glibc keeps what a process frees for reuse, and returns memory on its own only from the top of
its main heap. The detector frees large blocks all the time (decoded frames, tensors, Milvus
lite's Parquet segments and index builds on lite's own threads), so pages that are wholly free
but sit below live blocks stay in its RSS: the soak's detector crept up with them (a
`malloc_trim(0)` from a debugger at minute 20 gave back 17 MiB at once). `malloc_trim(0)`
releases every wholly free page of every heap (madvise) and takes milliseconds; the detector
calls it after each retention pass, about once a frame slice.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim in this process, or None where the C library has none (musl, macOS)."""
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return malloc_trim


def trim_c_heap() -> bool:
    """Hand the C heap's wholly free pages back to the OS; whether any were (False where the C
    library has no malloc_trim)."""
    malloc_trim = _malloc_trim()
    if malloc_trim is None:
        return False
    return bool(malloc_trim(0))
