"""The C heap against the real C library: free pages below live blocks go back to the OS
(trim_c_heap), and large blocks freed after a larger one still do, by themselves
(keep_large_blocks_out_of_the_heap)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Each script runs in a fresh process: its heap is then known, not the pytest process's.
PRELUDE = textwrap.dedent(
    """
    import ctypes

    def rss_mib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    """
)
SCRIPT = PRELUDE + textwrap.dedent(
    """
    from vigil.services.common.memory import trim_c_heap

    # 64 MiB in 16 KiB blocks (below glibc's mmap threshold, so on the heap), each touched;
    # every block but the last is freed, which keeps the free pages below a live block, where
    # glibc does not return them by itself.
    blocks = [libc.malloc(16 * 1024) for _ in range(4096)]
    for block in blocks:
        ctypes.memset(block, 1, 16 * 1024)
    for block in blocks[:-1]:
        libc.free(block)
    before = rss_mib()
    trimmed = trim_c_heap()
    print(trimmed, before, rss_mib())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_heap_pages_below_a_live_block_go_back_to_the_os():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    trimmed, before, after = result.stdout.split()
    assert trimmed == "True"
    assert float(before) - float(after) > 48, (before, after)  # most of the 64 MiB freed


LARGE_BLOCKS = PRELUDE + textwrap.dedent(
    """
    import sys
    from vigil.services.common.memory import keep_large_blocks_out_of_the_heap

    # A 16 MiB block (a mapping of its own) freed: glibc raises its mmap threshold to 16 MiB.
    libc.free(libc.malloc(16 * 1024 * 1024))
    if sys.argv[1] == "fixed":
        assert keep_large_blocks_out_of_the_heap()
    # 64 frames of 1 MiB, each touched, with a small live block allocated after each (the
    # bookkeeping a frame leaves behind); then the frames are freed, as the detector does.
    frames, kept = [], []
    for _ in range(64):
        frames.append(libc.malloc(1024 * 1024))
        ctypes.memset(frames[-1], 1, 1024 * 1024)
        kept.append(libc.malloc(1024))
    before = rss_mib()
    for frame in frames:
        libc.free(frame)
    print(before, rss_mib())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_go_back_to_the_os_when_freed_even_after_a_larger_one_was():
    def freed_mib(mode: str) -> float:
        result = subprocess.run(
            [sys.executable, "-c", LARGE_BLOCKS, mode], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        before, after = result.stdout.split()
        return float(before) - float(after)

    # glibc's own behaviour, the reason for the setting: the frames were carved from the heap,
    # between live blocks, and stay in the process when freed.
    assert freed_mib("default") < 8
    assert freed_mib("fixed") > 56  # each frame had its own mapping: all 64 MiB returned
