"""The self-checks of "What 1 bit buys on your CPU": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import hw
from qteach.exercises import what_one_bit_buys as ex

LABEL = "ex-what_one_bit_buys-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def binary_fc_intensity(n_in, n_out, batch):
    macs = n_in * n_out * batch
    row_bytes = math.ceil(n_in / 8)
    return macs / ((n_out + batch) * row_bytes + 4 * batch * n_out)


def binary_fc_intensity_with_hw(n_in, n_out, batch):
    """A second correct answer: the library's traffic count, with each packed row rounded up to whole bytes."""
    padded = 8 * math.ceil(n_in / 8)
    bits = hw.layer_traffic_bits(n_out * padded, batch * padded, batch * n_out, 1, 1, 32)
    return torch.tensor(hw.arithmetic_intensity(hw.linear_macs(n_in, n_out) * batch, bits / 8))


def in_bits(n_in, n_out, batch):
    return n_in * n_out * batch / ((n_out + batch) * n_in + 32 * batch * n_out)


def no_ceil(n_in, n_out, batch):
    return n_in * n_out * batch / ((n_out + batch) * n_in / 8 + 4 * batch * n_out)


def no_outputs(n_in, n_out, batch):
    return n_in * n_out * batch / ((n_out + batch) * math.ceil(n_in / 8))


def packed_outputs(n_in, n_out, batch):
    return n_in * n_out * batch / ((n_out + batch) * math.ceil(n_in / 8) + batch * math.ceil(n_out / 8))


def float_weights(n_in, n_out, batch):
    return n_in * n_out * batch / (4 * n_in * n_out + batch * math.ceil(n_in / 8) + 4 * batch * n_out)


def float_inputs(n_in, n_out, batch):
    return n_in * n_out * batch / (n_out * math.ceil(n_in / 8) + 4 * batch * n_in + 4 * batch * n_out)


def weights_per_input(n_in, n_out, batch):
    return n_in * n_out * batch / (batch * ((n_out + 1) * math.ceil(n_in / 8) + 4 * n_out))


def bytes_per_mac(n_in, n_out, batch):
    return 1 / binary_fc_intensity(n_in, n_out, batch)


@pytest.mark.parametrize("solution", [binary_fc_intensity, binary_fc_intensity_with_hw])
def test_check_1_passes_the_solutions(solution, capsys):
    line = ex.check_1(solution)
    assert line.startswith("✅ " + LABEL.format(1) + " passed")
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (in_bits, "convert bits to bytes"),
    (no_ceil, "ceil(in_features / 8)"),
    (no_outputs, "outputs are missing"),
    (packed_outputs, "int32 counts, 4 bytes each"),
    (float_weights, "weights are stored packed"),
    (float_inputs, "inputs are packed too"),
    (weights_per_input, "once for the whole batch"),
    (bytes_per_mac, "bytes per MAC"),
])
def test_check_1_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(err.value) and hint in str(err.value)


def test_check_1_rejects_a_non_number_and_a_non_function():
    with pytest.raises(AssertionError, match="should be a number"):
        ex.check_1(lambda *a: "8 MAC/byte")
    with pytest.raises(AssertionError, match="pass your function itself"):
        ex.check_1(binary_fc_intensity(4096, 4096, 1))


def test_check_1_says_not_attempted_for_the_stub(capsys):
    def stub(n_in, n_out, batch):
        raise NotImplementedError("Exercise 1: ...")

    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out


def test_check_1_cases_cover_rows_that_are_not_whole_bytes():
    assert any(n_in % 8 for n_in, _, _ in ex._INTENSITY_CASES)
    assert any(batch == 1 for _, _, batch in ex._INTENSITY_CASES) and any(b > 100 for _, _, b in ex._INTENSITY_CASES)


# --- exercise 2 ---------------------------------------------------------------------------------------------

def binary_speedup_bound(n_in, n_out, batch, peak_float32, peak_binary, bandwidth):
    macs = n_in * n_out * batch
    float_bytes = 4 * (n_in * n_out + batch * n_in + batch * n_out)
    binary_bytes = (n_out + batch) * math.ceil(n_in / 8) + 4 * batch * n_out
    attainable_float = min(peak_float32, macs / float_bytes * bandwidth)
    attainable_binary = min(peak_binary, macs / binary_bytes * bandwidth)
    return attainable_binary / attainable_float


def binary_speedup_bound_as_times(n_in, n_out, batch, peak_float32, peak_binary, bandwidth):
    """A second correct answer: the ratio of the least times, max(MACs / peak, bytes / bandwidth)."""
    macs = n_in * n_out * batch
    float_bytes = 4 * (n_in * n_out + batch * n_in + batch * n_out)
    binary_bytes = (n_out + batch) * math.ceil(n_in / 8) + 4 * batch * n_out
    t_float = max(macs / peak_float32, float_bytes / bandwidth)
    t_binary = max(macs / peak_binary, binary_bytes / bandwidth)
    return t_float / t_binary


def inverted(*case):
    return 1 / binary_speedup_bound(*case)


def peaks_only(n_in, n_out, batch, peak_float32, peak_binary, bandwidth):
    return peak_binary / peak_float32


def intensities_only(n_in, n_out, batch, peak_float32, peak_binary, bandwidth):
    return binary_fc_intensity(n_in, n_out, batch) / ex._float_fc_intensity(n_in, n_out, batch)


def with_max(n_in, n_out, batch, peak_float32, peak_binary, bandwidth):
    i_bin, i_f32 = binary_fc_intensity(n_in, n_out, batch), ex._float_fc_intensity(n_in, n_out, batch)
    return max(peak_binary, i_bin * bandwidth) / max(peak_float32, i_f32 * bandwidth)


@pytest.mark.parametrize("solution", [binary_speedup_bound, binary_speedup_bound_as_times])
def test_check_2_passes_the_solutions(solution, capsys):
    ex.check_2(solution)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (inverted, "float32 over binary"),
    (peaks_only, "ratio of the peaks"),
    (intensities_only, "ratio of the intensities"),
    (with_max, "not the larger"),
])
def test_check_2_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(err.value) and hint in str(err.value)


def test_check_2_cases_cover_every_regime():
    regimes = set()
    for n_in, n_out, batch, peak_float32, peak_binary, bandwidth in ex._BOUND_CASES:
        binary = ex._binary_fc_intensity(n_in, n_out, batch) * bandwidth < peak_binary
        float32 = ex._float_fc_intensity(n_in, n_out, batch) * bandwidth < peak_float32
        regimes.add((binary, float32))  # (memory-bound?, memory-bound?)
    assert regimes == {(True, True), (False, False), (False, True)}
