r"""What this CPU can do at most: its vector features, its clock, and its peak multiply-accumulates per second.

A kernel's speed means little alone; as a fraction of what the machine can do it says how much is left. The
peak of one core is the number of multiply-accumulates (MACs) its widest instruction for a data type does per
cycle, times the number of such instructions it can issue per cycle; the machine's peak multiplies by the clock
and the cores used:

.. math:: \text{peak (MAC/s)} = \text{cores} \times f_{\text{clock}} \times \text{MACs per cycle per core}.

The rules below (:data:`RULES`) read the MACs per cycle off the CPU's feature flags (Linux ``/proc/cpuinfo``); the
clock is the one the CPU reports (``cpu MHz``, often the base clock: a core that turbos runs faster, so a
measured fraction of peak can exceed what the base clock allows). Ports per core are assumptions stated in each
rule: two 512-bit FMA units is what Intel's Xeon Gold and Platinum parts have, one-FMA parts reach half. AMD's
Zen 4 (``vendor_id`` AuthenticAMD, ``cpu family`` 25 with AVX-512) runs 512-bit instructions on 256-bit units,
two cycles each; :func:`parse_cpuinfo` marks such a CPU with the extra flag ``avx512_on_256bit_units`` (not a
Linux flag), and its float32 and int8 rules give half the Intel numbers.

- **float32**: an FMA does one MAC per lane: 16 lanes in a 512-bit register (AVX-512), 8 in 256 bits (AVX2).
- **int8**: ``VPDPBUSD`` (VNNI) does 4 MACs per 32-bit lane: 64 in 512 bits; AMX's tile multiply 1,024 per cycle.
- **binary**: one XNOR-popcount bit is one 1-bit MAC: ``VPOPCNTQ`` on 512 bits (AVX-512 VPOPCNTDQ) counts 512
  per cycle, scalar ``POPCNT`` 64.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KINDS = ("float32", "int8", "binary")

#: Per kind, the first rule whose flags the CPU has: (flags needed, MACs per cycle per core, how).
RULES = {
    "float32": [
        ({"avx512f", "avx512_on_256bit_units"}, 16,
         "2 FMA units x 8 float32 lanes (AVX-512 on 256-bit units, AMD Zen 4)"),
        ({"avx512f"}, 32, "2 FMA units x 16 float32 lanes (AVX-512; 2 units assumed)"),
        ({"avx2", "fma"}, 16, "2 FMA units x 8 float32 lanes (AVX2 + FMA)"),
        (set(), 4, "4 float32 lanes, multiply then add (SSE)"),
    ],
    "int8": [
        ({"amx_int8"}, 1024, "AMX tile multiply, 1,024 int8 MACs per cycle"),
        ({"avx512_vnni", "avx512_on_256bit_units"}, 64,
         "2 units x 32 int8 MACs (AVX-512 VNNI on 256-bit units, AMD Zen 4)"),
        ({"avx512_vnni"}, 128, "2 units x 64 int8 MACs (AVX-512 VNNI VPDPBUSD; 2 units assumed)"),
        ({"avx_vnni"}, 64, "2 units x 32 int8 MACs (AVX-VNNI on 256 bits)"),
        ({"avx2"}, 32, "32 int8 MACs (AVX2 VPMADDUBSW + VPMADDWD pairs)"),
        (set(), 8, "8 int8 MACs (SSE)"),
    ],
    "binary": [
        ({"avx512_vpopcntdq"}, 512, "one 512-bit VPOPCNTQ per cycle: 512 XNOR-popcount bits (AVX-512 VPOPCNTDQ)"),
        ({"popcnt"}, 64, "one 64-bit POPCNT per cycle"),
        (set(), 16, "table popcount, about 16 bits per cycle"),
    ],
}


@dataclass(frozen=True)
class Peak:
    """The peak of one data type: ``macs_per_cycle`` per core and the rule it comes from."""

    kind: str
    macs_per_cycle: int
    how: str


@dataclass(frozen=True)
class Machine:
    """A CPU as it reports itself: ``model``, clock ``ghz`` (0 if unknown), usable ``cores`` and feature
    ``flags``."""

    model: str
    ghz: float
    cores: int
    flags: frozenset

    def peak(self, kind: str) -> Peak:
        """The rule of :data:`RULES` this CPU's flags select for ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return next(Peak(kind, macs, how) for needed, macs, how in RULES[kind] if needed <= self.flags)

    def peak_macs_per_s(self, kind: str, cores: int | None = None) -> float:
        """Peak MACs per second of ``kind`` on ``cores`` cores (default: all usable): cores x clock x MACs per
        cycle per core. ``nan`` if the clock is unknown."""
        if cores is None:
            cores = self.cores
        elif isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
            raise ValueError(f"cores must be a positive int, got {cores!r}")
        if self.ghz <= 0:
            return float("nan")
        return cores * self.ghz * 1e9 * self.peak(kind).macs_per_cycle


def parse_cpuinfo(text: str, cores: int) -> Machine:
    """A :class:`Machine` from the text of Linux's ``/proc/cpuinfo`` (its first processor) and ``cores``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores must be a positive int, got {cores!r}")
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    try:
        ghz = float(fields.get("cpu MHz", "0")) / 1000
    except ValueError:
        ghz = 0.0
    flags = set(fields.get("flags", "").split())
    if fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25" and "avx512f" in flags:
        flags.add("avx512_on_256bit_units")  # Zen 4: AVX-512 on 256-bit data paths
    return Machine(fields.get("model name", "unknown CPU"), ghz, cores, frozenset(flags))


def this_machine() -> Machine:
    """The CPU this code runs on (Linux; elsewhere a machine with no known flags or clock)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text, cores)
