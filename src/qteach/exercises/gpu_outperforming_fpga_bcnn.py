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


# --- exercise 2: the launch overhead that decides batch 1 ----------------------------------------------------

_CASES_2 = [(9, 6209.0, 1), (9, 6209.0, 8), (3, 1000.0, 1), (20, 250.0, 4), (1, 1e6, 32)]


def max_launch_overhead_reference(n_layers: int, fpga_images_per_s: float, batch: int) -> float:
    """B / (n_layers * R): a batch of B images costs at least n_layers launches, which must fit in B / R seconds."""
    return batch / (n_layers * fpga_images_per_s)


@self_check
def check_2(max_launch_overhead) -> str:
    """Check ``max_launch_overhead(n_layers, fpga_images_per_s, batch)``: B / (L * R) seconds."""
    label = _label(2)
    expect(callable(max_launch_overhead), label, "pass your function itself, e.g. check_2(max_launch_overhead)")
    for n_layers, rate, batch in _CASES_2:
        got = max_launch_overhead(n_layers, rate, batch)
        if hasattr(got, "item"):
            got = got.item()
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), label,
               f"max_launch_overhead should return a number of seconds, got {type(got).__name__}")
        ref = max_launch_overhead_reference(n_layers, rate, batch)
        if math.isclose(got, ref, rel_tol=1e-6):
            continue
        what = f"max_launch_overhead({n_layers}, {rate:g}, {batch})"
        hint = ("the GPU spends at least n_layers launches per batch of B images, and must deliver B images in no more "
                "time than the FPGA takes for them (B / R seconds).")
        if math.isclose(got, 1 / (n_layers * rate), rel_tol=1e-6):
            hint = "one launch per layer serves the whole batch: B images share the n_layers launches."
        elif math.isclose(got, batch / rate, rel_tol=1e-6):
            hint = "the network has n_layers layers, each launched once per batch: divide by the number of layers."
        elif math.isclose(got, n_layers * rate / batch, rel_tol=1e-6):
            hint = "that is the inverse: the answer is a time in seconds, a few microseconds for the page's network."
        elif math.isclose(got, 1e6 * ref, rel_tol=1e-6):
            hint = "return seconds, not microseconds."
        fail(label, f"{what} = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, f"your overhead limits are right for {len(_CASES_2)} networks and batch sizes")
