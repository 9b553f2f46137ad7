"""Self-checks of the FPGA accelerator survey chapter (notebooks/2018/fpga_accelerator_survey.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.fpga_accelerator_survey`, and
either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import fpga_accelerator_survey as fs

_SLUG = "fpga_accelerator_survey"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the smallest batch that makes a layer compute-bound ---------------------------------------------

_CASES_1 = [(9216, 4096, 8), (9216, 4096, 1), (4096, 4096, 4), (4096, 1000, 2), (1024, 1024, 8), (25088, 4096, 1)]


def _bound(n_in, n_out, bits, batch):
    return fs.layer_roofline(fs.fc_intensity(n_in, n_out, bits, bits, batch), fs.PYNQ_Z1, bits, bits)["bound"]


def _min_batch(n_in, n_out, bits, limit=4096):
    return next((b for b in range(1, limit + 1) if _bound(n_in, n_out, bits, b) == "compute"), None)


@self_check
def check_1(min_batch) -> str:
    """Check ``min_batch(n_in, n_out, bits)``: the smallest batch at which the layer is compute-bound on PYNQ-Z1."""
    label = _label(1)
    expect(callable(min_batch), label, "pass your function itself, e.g. check_1(min_batch)")
    for n_in, n_out, bits in _CASES_1:
        got = min_batch(n_in, n_out, bits)
        expected = _min_batch(n_in, n_out, bits)
        if got == expected:
            continue
        if isinstance(got, int) and got == expected - 1:
            fail(label, f"min_batch({n_in}, {n_out}, {bits}) = {got}, expected {expected}: at batch {got} the "
                        "memory roof I*B is still below the peak. Compare with a strict '<' as layer_roofline does, "
                        "or off by one in the loop?")
        if isinstance(got, int) and got >= 1 and _bound(n_in, n_out, bits, got) == "compute":
            fail(label, f"min_batch({n_in}, {n_out}, {bits}) = {got} is compute-bound, but a smaller batch "
                        f"({expected}) already is: return the smallest.")
        fail(label, f"min_batch({n_in}, {n_out}, {bits}) = {got!r}, expected {expected}. Use the same precision "
                    "for the intensity (fc_intensity) and for the peak (layer_roofline), and let the batch grow "
                    "from 1.")
    return passed(label, f"the smallest compute-bound batch is right for {len(_CASES_1)} layers and precisions")


# --- exercise 2: what 1 bit buys a memory-bound layer ---------------------------------------------------------


def _ratio() -> float:
    r1 = fs.layer_roofline(fs.fc_intensity(9216, 4096, 1, 1), fs.PYNQ_Z1, 1, 1)["attainable"]
    r8 = fs.layer_roofline(fs.fc_intensity(9216, 4096, 8, 8), fs.PYNQ_Z1, 8, 8)["attainable"]
    return r1 / r8


@self_check
def check_2(speedup) -> str:
    """Check ``speedup()``: attainable ops/s of the fc6-sized layer at 1 bit over 8 bits, batch 1, PYNQ-Z1."""
    label = _label(2)
    expect(callable(speedup), label, "pass your function itself, e.g. check_2(speedup)")
    got = as_number(speedup(), label, "speedup()")
    expected = _ratio()
    if abs(got - expected) <= 0.01 * expected:
        return passed(label, f"{expected:.2f}x: a memory-bound layer gains what its bytes shrink, no more")
    peak_ratio = fs.peak_ops(fs.PYNQ_Z1, 1, 1) / fs.peak_ops(fs.PYNQ_Z1, 8, 8)
    if abs(got - peak_ratio) <= 0.01 * peak_ratio:
        fail(label, "that is the ratio of the peaks; at batch 1 the layer is memory-bound, so the peak does not "
                    "matter: compare the attainable performance min(P, I*B).")
    if abs(got - 1 / expected) <= 0.01 / expected:
        fail(label, "inverted: divide the 1-bit attainable performance by the 8-bit one.")
    fail(label, f"expected about {expected:.2f}: compute layer_roofline(fc_intensity(9216, 4096, b, b), PYNQ_Z1, b, b)"
                " for b = 1 and b = 8 and divide the attainable values.")
