"""Benchmark the binary kernels of ``qteach.bitops`` against torch float32 on CPU.

Run from the repository root::

    python benchmarks/bench_bitops.py [--repeats 15]

Prints, for each op, the median wall time of several repeats of the float32 op and of the binary op (the binary
time includes binarisation and bit packing of every operand, which the user pays on each call), and their ratio.
"xnor_matmul_packed" times the deployment form, whose operands were packed once beforehand. Every op is called
once before timing, so numba's compilation (reported separately) is not in the timings. Both sides use
``torch.get_num_threads()`` threads.

The first calls load the kernels from numba's on-disk cache after the first run; to see the cold compile time,
point the cache at an empty folder: ``NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/bench_bitops.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign


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
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per op (median reported)")
    parser.add_argument("--threads", type=int, help="torch (and hence kernel) threads; default: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a_packed, b_packed = bitops.pack_bits(a), bitops.pack_bits(b)
    x, w = torch.randn(8, 256, 28, 28), torch.randn(256, 256, 3, 3)

    # First calls compile the numba kernels (or load them from numba's on-disk cache).
    matmul_first_s = first_call_s(lambda: bitops.xnor_matmul(a[:8], b[:8]))
    conv_first_s = first_call_s(lambda: bitops.binary_conv2d(x[:1, :, :8, :8], w, padding=1))
    assert torch.equal(bitops.xnor_matmul(a, b), (sign(a) @ sign(b).T).to(torch.int32))
    assert torch.equal(bitops.binary_conv2d(x, w, padding=1), F.conv2d(sign(x), sign(w), padding=1).to(torch.int32))

    rows = [
        ("xnor_matmul", "2048x2048 @ 2048x2048.T", lambda: a @ b.T, lambda: bitops.xnor_matmul(a, b)),
        ("xnor_matmul_packed", "2048x2048 @ 2048x2048.T", lambda: a @ b.T,
         lambda: bitops.xnor_matmul_packed(a_packed, b_packed, 2048)),
        ("binary_conv2d", "x 8x256x28x28, w 256x256x3x3, pad 1", lambda: F.conv2d(x, w, padding=1),
         lambda: bitops.binary_conv2d(x, w, padding=1)),
    ]
    print(f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()} "
          f"({numba.threading_layer()} layer); median of {args.repeats} repeats")
    print(f"first calls (numba compile or cache load): xnor_matmul {matmul_first_s:.2f} s, "
          f"binary_conv2d {conv_first_s:.2f} s")
    print(f"{'op':<20} {'shape':<38} {'float32 ms':>11} {'binary ms':>10} {'speed-up':>9}")
    for op, shape, float_fn, binary_fn in rows:
        float_ms = median_ms(float_fn, args.repeats)
        binary_ms = median_ms(binary_fn, args.repeats)
        print(f"{op:<20} {shape:<38} {float_ms:>11.2f} {binary_ms:>10.2f} {float_ms / binary_ms:>8.1f}x")


if __name__ == "__main__":
    main()
