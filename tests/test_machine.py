"""Tests of qteach.machine: the peak MACs per cycle read off a CPU's flags, and the peak per second."""

from __future__ import annotations

import math

import pytest

from qteach import machine

ICELAKE_SERVER = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
cpu MHz\t\t: 2300.000
flags\t\t: fpu sse sse2 popcnt avx avx2 fma avx512f avx512bw avx512_vnni avx512_vpopcntdq

processor\t: 1
model name\t: Intel(R) Xeon(R) Processor
cpu MHz\t\t: 2400.000
flags\t\t: fpu
"""

HASWELL = """model name\t: Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz
cpu MHz\t\t: 3400.000
flags\t\t: fpu sse sse2 popcnt avx avx2 fma
"""


def test_an_avx512_vpopcntdq_cpu_has_16_binary_macs_per_float32_mac():
    m = machine.parse_cpuinfo(ICELAKE_SERVER, cores=2)
    assert (m.model, m.ghz, m.cores) == ("Intel(R) Xeon(R) Processor", 2.3, 2)  # the first processor's fields
    assert [m.peak(k).macs_per_cycle for k in machine.KINDS] == [32, 128, 512]
    assert m.peak("binary").macs_per_cycle / m.peak("float32").macs_per_cycle == 16  # the "about 16x"
    assert m.peak_macs_per_s("float32") == pytest.approx(2 * 2.3e9 * 32)
    assert m.peak_macs_per_s("binary", cores=1) == pytest.approx(2.3e9 * 512)


def test_an_avx2_cpu_falls_back_to_its_own_rules():
    m = machine.parse_cpuinfo(HASWELL, cores=4)
    assert [m.peak(k).macs_per_cycle for k in machine.KINDS] == [16, 32, 64]
    assert "POPCNT" in m.peak("binary").how
    bare = machine.parse_cpuinfo("", cores=1)
    assert [bare.peak(k).macs_per_cycle for k in machine.KINDS] == [4, 8, 16]
    assert math.isnan(bare.peak_macs_per_s("int8"))  # no clock reported: no peak per second


def test_amx_beats_vnni_for_int8():
    m = machine.parse_cpuinfo(ICELAKE_SERVER.replace("avx512_vnni", "avx512_vnni amx_int8 amx_tile"), cores=1)
    assert m.peak("int8").macs_per_cycle == 1024


def test_this_machine_reports_usable_cores():
    m = machine.this_machine()
    assert m.cores >= 1 and m.peak("float32").macs_per_cycle >= 4


def test_bad_arguments():
    m = machine.parse_cpuinfo(HASWELL, cores=1)
    with pytest.raises(ValueError, match="kind"):
        m.peak("float16")
    with pytest.raises(ValueError, match="cores"):
        m.peak_macs_per_s("int8", cores=0)
    with pytest.raises(ValueError, match="cores"):
        machine.parse_cpuinfo(HASWELL, cores=True)
    with pytest.raises(TypeError, match="text"):
        machine.parse_cpuinfo(b"flags: avx2", cores=1)


def test_amd_zen4_runs_avx512_on_256_bit_units():
    zen4 = ("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2600.000\n"
            "flags\t\t: popcnt avx2 fma avx512f avx512_vnni avx512_vpopcntdq\n")
    m = machine.parse_cpuinfo(zen4, cores=2)
    assert "avx512_on_256bit_units" in m.flags
    assert [m.peak(k).macs_per_cycle for k in machine.KINDS] == [16, 64, 512]
    assert "Zen 4" in m.peak("float32").how
    # Intel's AVX-512 parts, and AMD parts of other families, keep the full-width rules
    zen5 = zen4.replace("cpu family\t: 25", "cpu family\t: 26")
    assert machine.parse_cpuinfo(zen5, cores=1).peak("float32").macs_per_cycle == 32
    assert "avx512_on_256bit_units" not in machine.parse_cpuinfo(ICELAKE_SERVER, cores=1).flags
