"""The self-checks of the GPU-outperforming FPGA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import gpu_outperforming_fpga_bcnn as ex
from qteach.papers import gpu_outperforming_fpga_bcnn as g

LABEL = "ex-gpu_outperforming_fpga_bcnn-{}"


def pipeline_images_per_s(macs, units, clock_hz):
    return clock_hz / max(math.ceil(m / u) for m, u in zip(macs, units))


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(pipeline_images_per_s).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda m, u, f: f / sum(math.ceil(a / b) for a, b in zip(m, u)), "not by the sum"),
    (lambda m, u, f: f / max(a // b for a, b in zip(m, u)), "ceil(M_l / U_l)"),
    (lambda m, u, f: f / math.ceil(sum(m) / sum(u)), "not shared between layers"),
    (lambda m, u, f: 2 * sum(m) * f / max(math.ceil(a / b) for a, b in zip(m, u)), "operations per second"),
    (lambda m, u, f: "fast", "should be a int or float"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def max_launch_overhead(n_layers, fpga_images_per_s, batch):
    return batch / (n_layers * fpga_images_per_s)


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(max_launch_overhead).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    ex.check_2(lambda n, r, b: (b / r) / n)                       # the time for B images, shared by n launches
    ex.check_2(lambda n, r, b: torch.tensor(b / (n * r), dtype=torch.float64))


def test_check_2_matches_the_gpu_model():
    """With no compute or memory limit at all (huge peak and bandwidth), the GPU model's batch rate is B / (L t):
    at the overhead the exercise returns, it equals the FPGA's rate."""
    layers = g.binarynet_cifar10()
    rate = 6209.0
    for batch in (1, 8):
        t = max_launch_overhead(len(layers), rate, batch)
        gpu = g.gpu_throughput(layers, batch, peak_ops_per_s=1e30, bandwidth_bytes_per_s=1e30, launch_s=t)
        assert math.isclose(gpu["images_per_s"], rate, rel_tol=1e-6)


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, r, b: 1 / (n * r), "B images share"),
    (lambda n, r, b: b / r, "divide by the number of layers"),
    (lambda n, r, b: n * r / b, "inverse"),
    (lambda n, r, b: 1e6 * b / (n * r), "not microseconds"),
    (lambda n, r, b: 20e-6, "at least n_layers launches"),
    (lambda n, r, b: "18 us", "number of seconds"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
