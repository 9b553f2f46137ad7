"""Self-checks of the Foundations chapter "What hardware pays for".

Each check calls the student's function on several inputs, compares with a reference built from
:mod:`qteach.hw` (or :func:`qteach.nn.summary`), and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math
from fractions import Fraction

from qteach import hw
from qteach.checks import expect, expect_close, expect_type, fail, passed, self_check

_SLUG = "what_hardware_pays_for"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: energy of a fully connected layer, weights from DRAM, activations from SRAM -----------------

def _fc_energy_reference(n_in, n_out, kind, bits):
    arithmetic = hw.linear_macs(n_in, n_out) * hw.mac_energy_pj(kind, bits)
    weights = hw.memory_access_energy_pj(n_in * n_out * bits, "dram")
    activations = hw.memory_access_energy_pj((n_in + n_out) * bits, "sram_32kb")
    return arithmetic, weights, activations


def _fc_energy_hint(got, n_in, n_out, kind, bits):
    arithmetic, weights, activations = _fc_energy_reference(n_in, n_out, kind, bits)
    words = lambda b, level: b / 64 * hw.MEMORY_PJ_PER_64BIT_45NM[level]  # noqa: E731 - no rounding up
    all_dram = arithmetic + hw.memory_access_energy_pj((n_in * n_out + n_in + n_out) * bits, "dram")
    candidates = [
        (weights + activations, "the arithmetic is missing: add MACs x hw.mac_energy_pj(kind, bits)."),
        (arithmetic, "the memory energy is missing: the weights come from DRAM, the activations from sram_32kb."),
        (arithmetic + weights, "the inputs and outputs are missing: they are read/written from 'sram_32kb'."),
        (all_dram, "everything was priced at DRAM; only the weights come from DRAM, the inputs and outputs from "
                   "'sram_32kb'."),
        (arithmetic + words(n_in * n_out * bits, "dram") + words((n_in + n_out) * bits, "sram_32kb"),
         "memory is charged per started 64-bit word: round the number of words up (math.ceil), per stream."),
        (arithmetic + hw.memory_access_energy_pj(n_in * n_out * bits // 8, "dram")
         + hw.memory_access_energy_pj((n_in + n_out) * bits // 8, "sram_32kb"),
         "hw.memory_access_energy_pj takes a number of bits, not bytes: do not divide by 8."),
    ]
    for value, hint in candidates:
        if isinstance(got, (int, float)) and math.isclose(float(got), value, rel_tol=1e-9):
            return hint
    return ("compare term by term: MACs x hw.mac_energy_pj(kind, bits), weight bits from 'dram', "
            "input + output bits from 'sram_32kb', each memory stream rounded up to 64-bit words.")


@self_check
def check_1(fc_energy_pj) -> str:
    """Check ``fc_energy_pj(in_features, out_features, kind, bits)`` (pJ, batch 1)."""
    label = _label(1)
    expect(callable(fc_energy_pj), label, "pass your function itself, e.g. check_1(fc_energy_pj)")
    cases = [(1024, 1000, "float", 32), (1024, 1000, "int", 8), (3, 5, "int", 8), (1, 1, "float", 16),
             (100, 10, "int", 32), (7, 9, "float", 32)]
    for n_in, n_out, kind, bits in cases:
        got = fc_energy_pj(n_in, n_out, kind, bits)
        if hasattr(got, "item") and getattr(got, "numel", lambda: 0)() == 1:
            got = got.item()
        expect_type(got, (int, float), label, f"fc_energy_pj({n_in}, {n_out}, {kind!r}, {bits})")
        expected = sum(_fc_energy_reference(n_in, n_out, kind, bits))
        if not math.isclose(float(got), expected, rel_tol=1e-6):
            fail(label, f"fc_energy_pj({n_in}, {n_out}, {kind!r}, {bits}) = {float(got):.6g} pJ, expected "
                        f"{expected:.6g} pJ. {_fc_energy_hint(got, n_in, n_out, kind, bits)}")
    return passed(label, f"energy matches the Horowitz-table reference on {len(cases)} layers, "
                         "including tiny ones where the 64-bit rounding matters")


# --- exercise 2: smallest batch that makes a fully connected layer compute-bound -------------------------------

def _batch_reference(n_in, n_out, bits, peak, bandwidth):
    """Exact (rational) smallest B >= 1 with B*W / ((W + B*S) * bits/8) >= peak/bandwidth, or None."""
    ridge = Fraction(peak) / Fraction(bandwidth)
    w, s, byte = n_in * n_out, n_in + n_out, Fraction(bits, 8)
    gain = w - ridge * s * byte
    if gain <= 0:
        return None
    return max(1, math.ceil(ridge * w * byte / gain))


def _intensity(n_in, n_out, bits, batch):
    traffic = hw.layer_traffic_bits(n_in * n_out, n_in * batch, n_out * batch, bits, bits, bits)
    return hw.arithmetic_intensity(n_in * n_out * batch, traffic / 8)


_BATCH_CASES = [  # (n_in, n_out, bits, peak MAC/s, bandwidth B/s); no case sits exactly on the ridge
    (1024, 1000, 32, 2e12, 100e9),
    (1024, 1000, 8, 2e12, 100e9),
    (1024, 1000, 1, 2e12, 100e9),
    (64, 64, 32, 1e12, 50e9),    # small layer: the limit 8W/(S b) = 8 is below the ridge 20 -> None
    (512, 512, 1, 1e12, 1e12),   # ridge 1: compute-bound already at batch 1
    (300, 200, 8, 5e11, 64e9),
]


def _batch_hint(got, n_in, n_out, bits, peak, bandwidth, expected):
    ridge = peak / bandwidth
    weights_only = max(1, math.ceil(Fraction(peak) / Fraction(bandwidth) * Fraction(bits, 8)))
    candidates = [
        (_batch_reference(n_in, n_out, 8 * bits, peak, bandwidth),
         "the bandwidth is in bytes per second: convert the bits moved to bytes (divide by 8)."),
        (weights_only, "the inputs and outputs are moved for every element of the batch: add their traffic, "
                       "(in_features + out_features) * bits / 8 bytes per input."),
        (ridge, "that is the ridge point itself; the question asks for a batch size."),
    ]
    if expected is not None:
        candidates.append((expected + 1, "one too many: an intensity equal to the ridge already counts as "
                                         "compute-bound, and the bound should be rounded up with math.ceil."))
    for value, hint in candidates:
        if value is not None and got == value:
            return hint
    if expected is None:
        limit = 8 * n_in * n_out / ((n_in + n_out) * bits)
        return (f"even for a huge batch the intensity only approaches 8*W/(S*bits) = {limit:.3g} MAC/byte, below "
                f"the ridge {ridge:.3g}: return None.")
    if isinstance(got, int) and not isinstance(got, bool) and got >= 1 and got < expected:
        return (f"at batch {got} the intensity is {_intensity(n_in, n_out, bits, got):.4g} MAC/byte, still below "
                f"the ridge {ridge:.4g}: round up, and count the input and output traffic.")
    return (f"batch {expected} already reaches the ridge {ridge:.4g} MAC/byte (intensity "
            f"{_intensity(n_in, n_out, bits, expected):.4g}); check the traffic: weights once per batch, inputs and "
            "outputs once per input, all at `bits` bits.")


@self_check
def check_2(batch_to_compute_bound) -> str:
    """Check ``batch_to_compute_bound(in_features, out_features, bits, peak, bandwidth)``."""
    label = _label(2)
    expect(callable(batch_to_compute_bound), label, "pass your function itself, e.g. check_2(batch_to_compute_bound)")
    for n_in, n_out, bits, peak, bandwidth in _BATCH_CASES:
        expected = _batch_reference(n_in, n_out, bits, peak, bandwidth)
        got = batch_to_compute_bound(n_in, n_out, bits, peak, bandwidth)
        call = f"batch_to_compute_bound({n_in}, {n_out}, {bits}, {peak:g}, {bandwidth:g})"
        if got is None and expected is not None:
            hint = ("the intensity grows with the batch because the weights are read once per batch, not once per "
                    "input.")
            if _batch_reference(n_in, n_out, 8 * bits, peak, bandwidth) is None:
                hint += (" Also check the units: the bandwidth is in bytes per second, so convert the bits moved to "
                         "bytes (divide by 8).")
            fail(label, f"{call} returned None, expected {expected}: {hint}")
        if got is not None and (isinstance(got, bool) or not isinstance(got, int)):
            if isinstance(got, float) and got.is_integer() and int(got) == expected:
                fail(label, f"{call} returned the float {got!r}; return an int (e.g. from math.ceil).")
            if not isinstance(got, float):
                fail(label, f"{call} returned {got!r} ({type(got).__name__}); return an int or None.")
        if got != expected:
            fail(label, f"{call} returned {got!r}, expected {expected!r}. "
                        f"{_batch_hint(got, n_in, n_out, bits, peak, bandwidth, expected)}")
    return passed(label, f"smallest compute-bound batch (or None) correct on {len(_BATCH_CASES)} layers and machines")


# --- exercise 3: memory of a model from its bit widths ---------------------------------------------------------

class _Precision:
    """An identity quantizer that only carries a bit width, for the summary reference."""

    def __init__(self, bits):
        self.precision = bits

    def __call__(self, x):
        return x


def _memory_reference(layers):
    """Memory in kB via qteach.nn.summary on a model of QuantLinear layers with those counts."""
    import torch
    from torch import nn

    from qteach import nn as qnn

    total = 0.0
    for count, bits, biases in layers:
        out = biases if biases else 1
        assert count % out == 0, "reference needs weight_count divisible by bias_count"
        layer = qnn.QuantLinear(count // out, out, bias=bool(biases), weight_quantizer=_Precision(bits))
        with torch.no_grad():
            total += qnn.summary(nn.Sequential(layer), (count // out,)).memory_kb
    return total


_MEMORY_CASES = [
    [(144, 8, 16), (4608, 1, 32), (32768, 1, 64), (640, 8, 10)],
    [(1024 * 1000, 32, 1000)],
    [(36864, 1, 0)],                 # no bias at all
    [(64, 4, 8), (80, 2, 10)],
    [(10, 3, 2)],                    # an odd width: 30 bits of weights
]


@self_check
def check_3(model_memory_kb) -> str:
    """Check ``model_memory_kb(layers)`` with layers as ``(weight_count, weight_bits, bias_count)`` tuples."""
    label = _label(3)
    expect(callable(model_memory_kb), label, "pass your function itself, e.g. check_3(model_memory_kb)")
    for layers in _MEMORY_CASES:
        expected = _memory_reference(layers)
        got = model_memory_kb(list(layers))
        expect_type(got, (int, float), label, f"model_memory_kb({layers})")
        if math.isclose(float(got), expected, rel_tol=1e-9):
            continue
        same_bits = sum((c + b) * w for c, w, b in layers) / 8192
        no_bias = sum(c * w for c, w, _ in layers) / 8192
        bits_kb = sum(c * w + b * 32 for c, w, b in layers) / 1024
        decimal = sum(c * w + b * 32 for c, w, b in layers) / 8000
        hint = ("memory = sum of weight_count * weight_bits + bias_count * 32, in bits; "
                "kB = bits / 8 / 1024.")
        if math.isclose(float(got), same_bits, rel_tol=1e-9):
            hint = "the biases are stored in float32 (32 bits), not at the weight width."
        elif math.isclose(float(got), no_bias, rel_tol=1e-9):
            hint = "the biases are missing: each bias takes 32 bits."
        elif math.isclose(float(got), bits_kb, rel_tol=1e-9):
            hint = "the counts are in bits: divide by 8 for bytes before dividing by 1024."
        elif math.isclose(float(got), decimal, rel_tol=1e-9):
            hint = "use 1 kB = 1024 bytes (the convention of qteach.nn.summary), not 1000."
        expect_close(float(got), expected, label, f"model_memory_kb({layers})", rtol=1e-9, atol=0, hint=hint)
    return passed(label, f"model memory equals qteach.nn.summary on {len(_MEMORY_CASES)} models")
