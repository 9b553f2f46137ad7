"""Self-checks of the chapter "A GPU-Outperforming FPGA Accelerator Architecture for Binary CNNs" (Li et al.).

Each check calls the student's function on several inputs, compares with
:mod:`qteach.papers.gpu_outperforming_fpga_bcnn`, and either prints the success line or raises ``AssertionError``
with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import gpu_outperforming_fpga_bcnn as g

_SLUG = "gpu_outperforming_fpga_bcnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: images per second of a fully mapped pipeline ---------------------------------------------------

_CASES_1 = [
    ([100, 50], [10, 5], 1e6),
    ([100, 50], [5, 10], 1e6),
    ([7, 20, 3], [2, 5, 1], 90e6),
    ([10**6, 3 * 10**5, 10**4], [1000, 333, 7], 2e8),
]


def _layers(macs):
    return [g.StreamLayer(f"l{i}", m, 1, 1, 1) for i, m in enumerate(macs)]


def _wrong_1(macs, units, clock, kind):
    if kind == "sum":
        return clock / sum(math.ceil(m / u) for m, u in zip(macs, units))
    if kind == "floor":
        return clock / max(m // u for m, u in zip(macs, units))
    if kind == "total":
        return clock / math.ceil(sum(macs) / sum(units))
    return 2 * sum(macs) * clock / max(math.ceil(m / u) for m, u in zip(macs, units))   # ops/s, not images/s


_HINTS_1 = [
    ("sum", "the stages work on consecutive images at the same time: the rate is set by the slowest stage, "
            "max(T_l), not by the sum."),
    ("floor", "a stage with work left over needs one more cycle: T_l = ceil(M_l / U_l)."),
    ("total", "the units are not shared between layers: each stage has its own, so compute each T_l separately and "
              "take the maximum."),
    ("ops", "that is operations per second; the question asks for images per second, f / max(T_l)."),
]


@self_check
def check_1(pipeline_images_per_s) -> str:
    """Check ``pipeline_images_per_s(macs, units, clock_hz)`` for a fully mapped layer pipeline."""
    label = _label(1)
    expect(callable(pipeline_images_per_s), label, "pass your function itself, e.g. check_1(pipeline_images_per_s)")
    for macs, units, clock in _CASES_1:
        got = pipeline_images_per_s(list(macs), list(units), clock)
        if hasattr(got, "item"):
            got = got.item()
        expect_type(got, (int, float), label, "pipeline_images_per_s(...)")
        expected = g.streaming_throughput(_layers(macs), list(units), clock)["images_per_s"]
        if not math.isclose(got, expected, rel_tol=1e-9):
            hint = next((h for kind, h in _HINTS_1 if math.isclose(got, _wrong_1(macs, units, clock, kind),
                                                                   rel_tol=1e-9)),
                        "stage l takes ceil(M_l / U_l) cycles per image; the pipeline accepts one image every "
                        "max_l of those cycles.")
            fail(label, f"pipeline_images_per_s({macs}, {units}, {clock:g}) = {got:.6g}, expected {expected:.6g}. "
                        f"{hint}")
    return passed(label, f"images per second match the streaming model on {len(_CASES_1)} pipelines, "
                         "balanced and unbalanced")


# --- exercise 2: bits of a line buffer ------------------------------------------------------------------------

_CASES_2 = [(7, 3, 3), (32, 128, 3), (16, 256, 3), (10, 1, 1), (28, 64, 5), (8, 32, 2)]

_WRONG_2 = [
    (lambda w, c, k: k * w * c, "k full rows are more than needed: when the window's last pixel arrives, its first "
                                "arrived (k-1) rows and (k-1) pixels earlier, so hold (k-1)*W + k pixels."),
    (lambda w, c, k: (k - 1) * w * c, "(k-1) full rows are not quite enough: the current row's first k pixels of the "
                                      "window are needed too, (k-1)*W + k pixels."),
    (lambda w, c, k: (k - 1) * w + k, "each pixel carries one bit per channel: multiply by the number of channels."),
    (lambda w, c, k: k * k * c, "that is one window, not the buffer: the rows above must be kept until the window "
                                "slides over them, (k-1)*W + k pixels."),
]


@self_check
def check_2(line_buffer) -> str:
    """Check ``line_buffer(width, channels, kernel)``: bits of the line buffer of a streaming binary convolution."""
    label = _label(2)
    expect(callable(line_buffer), label, "pass your function itself, e.g. check_2(line_buffer)")
    answers = {}
    for case in _CASES_2:
        got = line_buffer(*case)
        if hasattr(got, "item"):
            got = got.item()
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect_type(got, int, label, f"line_buffer{case}")
        answers[case] = got
    wrong = [case for case in _CASES_2 if answers[case] != g.line_buffer_bits(*case)]
    if wrong:
        case = wrong[0]
        hint = next((h for f, h in _WRONG_2 if all(answers[c] == f(*c) for c in _CASES_2)),
                    "hold the pixels from the window's first to its last in raster order: (k-1)*W + k pixels of C "
                    "bits each.")
        fail(label, f"line_buffer{case} = {answers[case]}, expected {g.line_buffer_bits(*case)}. {hint}")
    return passed(label, f"buffer sizes match on {len(_CASES_2)} layer shapes")
