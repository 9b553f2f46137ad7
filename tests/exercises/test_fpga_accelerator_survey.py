"""The self-checks of the FPGA accelerator survey chapter: solutions pass, mistakes fail with a hint."""

from __future__ import annotations

import pytest

from qteach.exercises import fpga_accelerator_survey as ex
from qteach.papers import fpga_accelerator_survey as fs

LABEL = "ex-fpga_accelerator_survey-{}"


def min_batch(n_in, n_out, bits):
    for batch in range(1, 4097):
        intensity = fs.fc_intensity(n_in, n_out, bits, bits, batch)
        if fs.layer_roofline(intensity, fs.PYNQ_Z1, bits, bits)["bound"] == "compute":
            return batch
    return None


def min_batch_closed_form(n_in, n_out, bits):
    """Another correct answer: compare I*B with the peak directly."""
    peak = fs.peak_ops(fs.PYNQ_Z1, bits, bits)
    batch = 1
    while fs.fc_intensity(n_in, n_out, bits, bits, batch) * fs.PYNQ_Z1.dram_bytes_per_s < peak:
        batch += 1
    return batch


def min_batch_off_by_one(n_in, n_out, bits):
    return min_batch(n_in, n_out, bits) - 1


def min_batch_8bit_peak(n_in, n_out, bits):
    for batch in range(1, 4097):
        intensity = fs.fc_intensity(n_in, n_out, bits, bits, batch)
        if fs.layer_roofline(intensity, fs.PYNQ_Z1, 8, 8)["bound"] == "compute":
            return batch


def test_check_1_passes_solutions(capsys):
    assert ex.check_1(min_batch).startswith("✅ " + LABEL.format(1))
    ex.check_1(min_batch_closed_form)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (min_batch_off_by_one, "still below the peak"),
    (lambda n_in, n_out, bits: 4000, "return the smallest"),
    (min_batch_8bit_peak, "same precision"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def speedup():
    r1 = fs.layer_roofline(fs.fc_intensity(9216, 4096, 1, 1), fs.PYNQ_Z1, 1, 1)["attainable"]
    r8 = fs.layer_roofline(fs.fc_intensity(9216, 4096, 8, 8), fs.PYNQ_Z1, 8, 8)["attainable"]
    return r1 / r8


def test_check_2_passes_solutions(capsys):
    assert ex.check_2(speedup).startswith("✅ " + LABEL.format(2))
    ex.check_2(lambda: 8.0)   # the bytes per weight shrink 8x
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda: fs.peak_ops(fs.PYNQ_Z1, 1, 1) / fs.peak_ops(fs.PYNQ_Z1, 8, 8), "ratio of the peaks"),
    (lambda: 1 / 8, "inverted"),
    (lambda: 64.0, "expected about"),
    (lambda: "8", "should be a number"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
