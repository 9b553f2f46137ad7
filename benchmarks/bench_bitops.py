"""Benchmark the binary kernels of ``qteach.bitops`` against torch's float32 and int8 kernels on CPU.

Run from the repository root (``make bench``)::

    python benchmarks/bench_bitops.py [--threads 2] [--repeats 15]

For a 2048 x 2048 x 2048 matrix product and a 3 x 3, 256 -> 256 convolution of an 8 x 256 x 28 x 28 input it
prints the median wall time of each kernel, its multiply-accumulates per second (a 1-bit XNOR-popcount counts as
one MAC) as a fraction of this machine's peak for that data type (:mod:`qteach.machine`: cores x clock x MACs per
cycle, the rule printed), and the speed-ups the issue tracks: binary GEMM over float32 and over torch's int8
matmul of the same signs (``torch._int_mm``), binary convolution over float32 ``F.conv2d``.

``xnor_matmul`` includes binarizing and packing both operands on every call; ``xnor_matmul_packed`` is the
deployment form, whose operands were packed once. Every kernel is called once before timing, so numba's
compilation (reported separately) is not in the timings. All kernels use ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import torch
import torch.nn.functional as F

from qteach import bitops, machine
from qteach.binary import sign

SIZE = 2048
CONV_INPUT, CONV_WEIGHT = (8, 256, 28, 28), (256, 256, 3, 3)


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def first_call_s(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads of every kernel (default 2)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per kernel (median reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cpu = machine.this_machine()

    a, b = torch.randn(SIZE, SIZE), torch.randn(SIZE, SIZE)
    a_int8, b_int8 = sign(a).to(torch.int8), sign(b).to(torch.int8).T  # torch._int_mm: (M, K) @ (K, N)
    a_packed, b_packed = bitops.pack_bits(a), bitops.pack_bits(b)
    x, w = torch.randn(*CONV_INPUT), torch.randn(*CONV_WEIGHT)

    matmul_first_s = first_call_s(lambda: bitops.xnor_matmul(a[:8], b[:8]))
    conv_first_s = first_call_s(lambda: bitops.binary_conv2d(x[:1, :, :8, :8], w, padding=1))
    exact = bitops.xnor_matmul(a, b)
    assert torch.equal(exact, (sign(a) @ sign(b).T).to(torch.int32))
    assert torch.equal(torch._int_mm(a_int8, b_int8), exact)
    assert torch.equal(bitops.binary_conv2d(x, w, padding=1), F.conv2d(sign(x), sign(w), padding=1).to(torch.int32))

    gemm_macs = SIZE ** 3
    conv_macs = CONV_INPUT[0] * CONV_WEIGHT[0] * CONV_WEIGHT[1] * 9 * CONV_INPUT[2] * CONV_INPUT[3]
    rows = [  # (name, data type, MACs, function)
        ("float32 GEMM (a @ b.T)", "float32", gemm_macs, lambda: a @ b.T),
        ("int8 GEMM (torch._int_mm)", "int8", gemm_macs, lambda: torch._int_mm(a_int8, b_int8)),
        ("binary GEMM (xnor_matmul)", "binary", gemm_macs, lambda: bitops.xnor_matmul(a, b)),
        ("binary GEMM, packed once", "binary", gemm_macs,
         lambda: bitops.xnor_matmul_packed(a_packed, b_packed, SIZE)),
        ("float32 conv (F.conv2d)", "float32", conv_macs, lambda: F.conv2d(x, w, padding=1)),
        ("binary conv (binary_conv2d)", "binary", conv_macs, lambda: bitops.binary_conv2d(x, w, padding=1)),
    ]
    print(f"{cpu.model}, {cpu.ghz:.2f} GHz as reported, {args.threads} threads (torch {torch.get_num_threads()}, "
          f"numba {numba.get_num_threads()}, {numba.threading_layer()} layer); median of {args.repeats} repeats")
    print(f"first calls (numba compile or cache load): xnor_matmul {matmul_first_s:.2f} s, "
          f"binary_conv2d {conv_first_s:.2f} s")
    print("peak = threads x clock x MACs per cycle per core:")
    for kind in machine.KINDS:
        peak = cpu.peak(kind)
        print(f"  {kind:<8} {args.threads} x {cpu.ghz:.2f} GHz x {peak.macs_per_cycle:>4} = "
              f"{cpu.peak_macs_per_s(kind, args.threads) / 1e9:>8.0f} GMAC/s   ({peak.how})")
    print(f"{'kernel':<30} {'ms':>9} {'GMAC/s':>9} {'of peak':>8}")
    ms = {}
    for name, kind, macs, fn in rows:
        ms[name] = median_ms(fn, args.repeats)
        rate = macs / ms[name] / 1e6
        print(f"{name:<30} {ms[name]:>9.2f} {rate:>9.0f} {rate * 1e9 / cpu.peak_macs_per_s(kind, args.threads):>8.1%}")
    print("(a fraction of peak above 100 % means the cores ran faster than the clock they report: turbo)")
    print("speed-ups (the targets of the book's kernel issue in brackets):")
    for label, slow, fast, target in (
            ("binary GEMM over float32", "float32 GEMM (a @ b.T)", "binary GEMM (xnor_matmul)", 8),
            ("binary GEMM over float32, packed once", "float32 GEMM (a @ b.T)", "binary GEMM, packed once", 8),
            ("binary GEMM over int8", "int8 GEMM (torch._int_mm)", "binary GEMM (xnor_matmul)", 1.5),
            ("binary GEMM over int8, packed once", "int8 GEMM (torch._int_mm)", "binary GEMM, packed once", 1.5),
            ("binary conv over float32", "float32 conv (F.conv2d)", "binary conv (binary_conv2d)", 5)):
        print(f"  {label:<40} {ms[slow] / ms[fast]:>6.1f}x   (>= {target}x)")


if __name__ == "__main__":
    main()
