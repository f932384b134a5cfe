"""The CPU's model and the instruction-set extensions that decide which int8/bf16 kernels run.

int8 speed and even int8 accuracy depend on them: without VNNI, onnxruntime's u8 x s8 products go
through AVX2's VPMADDUBSW (pair sums saturating to int16: see models/clip/int8.py); VNNI (AVX-512
or AVX) accumulates in int32; AMX multiplies int8/bf16 tiles. Every benchmark result records them,
so that a figure is never compared with one from a CPU that runs other kernels (`make bench`,
bench/run.py), and so does every evaluation report (`vigil eval`, vigil/evaluation/report.py).
"""

from __future__ import annotations

import platform
from pathlib import Path

# /proc/cpuinfo flag names, in the order they are reported.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def instruction_set(cpuinfo: Path | str = Path("/proc/cpuinfo")) -> dict:
    """{"model": model name, "flags": {flag: present} for FLAGS, "int8_dot_product": which kind}.

    cpuinfo: the file to read, or its text. Flags are read from the first processor's entry
    (every core of one machine has the same). Off Linux, or on a CPU that is not x86, the flags
    are unknown (None), never guessed absent.
    """
    if isinstance(cpuinfo, Path):
        try:
            text = cpuinfo.read_text()
        except OSError:
            text = ""
    else:
        text = cpuinfo
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # end of the first processor's entry
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    present = set(fields.get("flags", "").split())
    flags = {flag: (flag in present) if present else None for flag in FLAGS}
    return {
        "model": fields.get("model name") or platform.processor() or "unknown CPU",
        "flags": flags,
        "int8_dot_product": _int8_dot_product(flags),
    }


def _int8_dot_product(flags: dict[str, bool | None]) -> str:
    if flags["avx2"] is None:
        return "unknown"
    if flags["amx_int8"]:
        return "AMX (int8 tiles)"
    if flags["avx512_vnni"] or flags["avx_vnni"]:
        return "VNNI (int32 accumulation)"
    if flags["avx2"]:
        return "AVX2 VPMADDUBSW (int16 pair sums)"
    return "none (no AVX2)"


def describe(isa: dict | None) -> str:
    """One line for a table header: the flags present and absent, and the int8 kernel they mean."""
    if not isa:
        return "instruction set not recorded (taken before results recorded it)"
    flags = isa["flags"]
    if all(value is None for value in flags.values()):
        return "instruction set unknown (no /proc/cpuinfo flags)"
    present = [flag for flag, value in flags.items() if value]
    absent = [flag for flag, value in flags.items() if value is False]
    return (
        f"x86 flags: {' '.join(present) or 'none of ' + ', '.join(FLAGS)}"
        + (f" (not: {' '.join(absent)})" if absent else "")
        + f"; int8 dot products: {isa['int8_dot_product']}"
    )
