"""Handing the C heap's free pages back to the OS (glibc's `malloc_trim`), and keeping large
blocks out of it (`mallopt(M_MMAP_THRESHOLD)`).

glibc keeps what a process frees for reuse, and returns memory on its own only from the top of
its main heap. The detector frees large blocks all the time (decoded frames, tensors, Milvus
lite's Parquet segments and index builds on lite's own threads), so pages that are wholly free
but sit below live blocks stay in its RSS: the soak's detector crept up with them (a
`malloc_trim(0)` from a debugger at minute 20 gave back 17 MiB at once). `malloc_trim(0)`
releases every wholly free page of every heap (madvise) and takes milliseconds; the detector
calls it after each retention pass, about once a frame slice.

`malloc_trim` cannot give back a page that still holds one live block, and glibc puts large
blocks among the small ones after a while: it serves a block over its mmap threshold (128 KiB
at start) with a mapping of its own, unmapped when freed, but raises that threshold to the size
of each such block freed, up to 32 MiB. After the first decoded frame (1.3 MB at 768x576) is
freed, every later frame, tensor and Parquet buffer is carved from the heap, and the small live
blocks allocated between them pin its pages: the soak's detector grew in glibc's main heap
(168 to 190 MiB in ten minutes) with no growth in what Python held. A threshold set once with
`mallopt` stays where it is set, so large blocks keep their own mappings and go back to the OS
whole when freed, for one mmap and munmap each (microseconds against a frame's milliseconds).
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

# glibc's malloc.h: the mallopt parameters for the mmap and trim thresholds.
_M_MMAP_THRESHOLD = -3
_M_TRIM_THRESHOLD = -1
# Blocks from this size on get a mapping of their own: glibc's starting threshold, kept fixed.
LARGE_BLOCK_BYTES = 128 * 1024


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


def keep_large_blocks_out_of_the_heap(threshold_bytes: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve every block of `threshold_bytes` or more with a mapping of its own, from now on and
    whatever is freed later (see the module docstring); whether the C library took the setting
    (False where it has no mallopt)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # The trim threshold too: glibc raised it with the mmap threshold (to twice that) for every
    # large block the process freed before this call (imports do), and it is how much free space
    # at the top of the heap glibc keeps rather than returning.
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(
        mallopt(_M_TRIM_THRESHOLD, threshold_bytes)
    )
