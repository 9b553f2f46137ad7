"""The self-checks of the GPU-outperforming FPGA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest

from qteach.exercises import gpu_outperforming_fpga_bcnn as ex

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


def line_buffer(width, channels, kernel):
    return ((kernel - 1) * width + kernel) * channels


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(line_buffer).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, c, k: k * w * c, "k full rows are more than needed"),
    (lambda w, c, k: (k - 1) * w * c, "not quite enough"),
    (lambda w, c, k: (k - 1) * w + k, "multiply by the number of channels"),
    (lambda w, c, k: k * k * c, "one window, not the buffer"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
