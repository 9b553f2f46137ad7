"""The self-checks of "What hardware pays for": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest

from qteach import hw
from qteach.exercises import what_hardware_pays_for as ex

LABEL = "ex-what_hardware_pays_for-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def fc_energy_pj(n_in, n_out, kind, bits):
    arithmetic = hw.linear_macs(n_in, n_out) * hw.mac_energy_pj(kind, bits)
    weights = hw.memory_access_energy_pj(n_in * n_out * bits, "dram")
    activations = hw.memory_access_energy_pj((n_in + n_out) * bits, "sram_32kb")
    return arithmetic + weights + activations


def fc_energy_all_dram(n_in, n_out, kind, bits):
    return (hw.linear_macs(n_in, n_out) * hw.mac_energy_pj(kind, bits)
            + hw.memory_access_energy_pj((n_in * n_out + n_in + n_out) * bits, "dram"))


def fc_energy_no_ceil(n_in, n_out, kind, bits):
    return (hw.linear_macs(n_in, n_out) * hw.mac_energy_pj(kind, bits)
            + n_in * n_out * bits / 64 * 1300.0 + (n_in + n_out) * bits / 64 * 20.0)


def fc_energy_arithmetic_only(n_in, n_out, kind, bits):
    return hw.linear_macs(n_in, n_out) * hw.mac_energy_pj(kind, bits)


def fc_energy_no_arithmetic(n_in, n_out, kind, bits):
    return fc_energy_pj(n_in, n_out, kind, bits) - fc_energy_arithmetic_only(n_in, n_out, kind, bits)


def fc_energy_bytes(n_in, n_out, kind, bits):
    return (hw.linear_macs(n_in, n_out) * hw.mac_energy_pj(kind, bits)
            + hw.memory_access_energy_pj(n_in * n_out * bits // 8, "dram")
            + hw.memory_access_energy_pj((n_in + n_out) * bits // 8, "sram_32kb"))


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(fc_energy_pj)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (fc_energy_all_dram, "only the weights come from DRAM"),
    (fc_energy_no_ceil, "per started 64-bit word"),
    (fc_energy_arithmetic_only, "memory energy is missing"),
    (fc_energy_no_arithmetic, "arithmetic is missing"),
    (fc_energy_bytes, "not bytes"),
])
def test_check_1_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(err.value) and hint in str(err.value)


def test_check_1_rejects_a_non_number():
    with pytest.raises(AssertionError, match=LABEL.format(1)):
        ex.check_1(lambda *a: "12 pJ")


# --- exercise 2 ---------------------------------------------------------------------------------------------

def batch_to_compute_bound(n_in, n_out, bits, peak, bandwidth):
    ridge = peak / bandwidth
    weight_bytes = n_in * n_out * bits / 8
    per_input_bytes = (n_in + n_out) * bits / 8
    gain = n_in * n_out - ridge * per_input_bytes
    if gain <= 0:
        return None
    return max(1, math.ceil(ridge * weight_bytes / gain))


def batch_brute_force(n_in, n_out, bits, peak, bandwidth):
    """A second, independent solution: try batches with the library's own intensity."""
    ridge = peak / bandwidth
    for batch in range(1, 100_000):
        traffic = hw.layer_traffic_bits(n_in * n_out, n_in * batch, n_out * batch, bits, bits, bits)
        if hw.arithmetic_intensity(n_in * n_out * batch, traffic / 8) >= ridge:
            return batch
    return None


def batch_forgets_bytes(n_in, n_out, bits, peak, bandwidth):
    return batch_to_compute_bound(n_in, n_out, 8 * bits, peak, bandwidth)


def batch_weights_only(n_in, n_out, bits, peak, bandwidth):
    return max(1, math.ceil(peak / bandwidth * bits / 8))


def batch_weights_per_input(n_in, n_out, bits, peak, bandwidth):
    # weights re-read for every input: the intensity never grows with the batch
    intensity = n_in * n_out / ((n_in * n_out + n_in + n_out) * bits / 8)
    return 1 if intensity >= peak / bandwidth else None


def batch_off_by_one(n_in, n_out, bits, peak, bandwidth):
    b = batch_to_compute_bound(n_in, n_out, bits, peak, bandwidth)
    return None if b is None else b + 1


def batch_never_none(n_in, n_out, bits, peak, bandwidth):
    b = batch_to_compute_bound(n_in, n_out, bits, peak, bandwidth)
    return 10**9 if b is None else b


@pytest.mark.parametrize("solution", [batch_to_compute_bound, batch_brute_force])
def test_check_2_passes_the_solutions(solution, capsys):
    ex.check_2(solution)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


def test_check_2_cases_are_not_on_a_tie():
    """Float and exact arithmetic agree on every case, so a correct float solution cannot be unlucky."""
    for case in ex._BATCH_CASES:
        assert ex._batch_reference(*case) == batch_to_compute_bound(*case) == batch_brute_force(*case)
    assert any(ex._batch_reference(*c) is None for c in ex._BATCH_CASES)
    assert any(ex._batch_reference(*c) == 1 for c in ex._BATCH_CASES)


@pytest.mark.parametrize("wrong, hint", [
    (batch_forgets_bytes, "divide by 8"),
    (batch_weights_only, "add their traffic"),
    (batch_weights_per_input, "weights are read once per batch"),
    (batch_off_by_one, "one too many"),
    (batch_never_none, "return None"),
])
def test_check_2_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(err.value) and hint in str(err.value)


def test_check_2_rejects_a_float():
    with pytest.raises(AssertionError, match="return an int"):
        ex.check_2(lambda *a: None if batch_to_compute_bound(*a) is None else float(batch_to_compute_bound(*a)))


# --- exercise 3 ---------------------------------------------------------------------------------------------

def model_memory_kb(layers):
    return sum(c * w + b * 32 for c, w, b in layers) / 8 / 1024


@pytest.mark.parametrize("wrong, hint", [
    (lambda layers: sum((c + b) * w for c, w, b in layers) / 8 / 1024, "stored in float32"),
    (lambda layers: sum(c * w for c, w, _ in layers) / 8 / 1024, "biases are missing"),
    (lambda layers: sum(c * w + b * 32 for c, w, b in layers) / 1024, "divide by 8"),
    (lambda layers: sum(c * w + b * 32 for c, w, b in layers) / 8 / 1000, "1024"),
])
def test_check_3_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_3(wrong)
    assert LABEL.format(3) in str(err.value) and hint in str(err.value)


def test_check_3_passes_the_solution(capsys):
    ex.check_3(model_memory_kb)
    assert "✅ " + LABEL.format(3) + " passed" in capsys.readouterr().out
