"""Self-checks of the Foundations chapter "What 1 bit buys on your CPU".

Each check calls the student's function on several layers and machines, compares with a reference built from
:mod:`qteach.hw` (traffic, arithmetic intensity, roofline), and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

from qteach import hw
from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "what_one_bit_buys"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _packed_row_bytes(k: int) -> int:
    """Bytes of one row of ``k`` signs as ``bitops.pack_bits`` stores it: 8 signs per byte, the last one padded."""
    return math.ceil(k / 8)


def _binary_fc_bytes(n_in: int, n_out: int, batch: int) -> int:
    """Least traffic of a packed binary fully connected layer: packed weights and inputs, int32 outputs."""
    return (n_out + batch) * _packed_row_bytes(n_in) + 4 * batch * n_out


def _binary_fc_intensity(n_in: int, n_out: int, batch: int) -> float:
    return hw.arithmetic_intensity(hw.linear_macs(n_in, n_out) * batch, _binary_fc_bytes(n_in, n_out, batch))


def _float_fc_intensity(n_in: int, n_out: int, batch: int) -> float:
    traffic_bits = hw.layer_traffic_bits(n_in * n_out, batch * n_in, batch * n_out, 32, 32, 32)
    return hw.arithmetic_intensity(hw.linear_macs(n_in, n_out) * batch, traffic_bits / 8)


# --- exercise 1: arithmetic intensity of a packed binary fully connected layer ----------------------------------

_INTENSITY_CASES = [(4096, 4096, 1), (4096, 4096, 256), (1000, 10, 1), (100, 7, 3), (64, 64, 1000), (9, 3, 2)]


def _intensity_hint(got: float, n_in: int, n_out: int, batch: int) -> str:
    macs = n_in * n_out * batch
    row = _packed_row_bytes(n_in)
    candidates = [
        (macs / ((n_out + batch) * n_in + 32 * batch * n_out),
         "the traffic was counted in bits: the intensity is MACs per byte, so convert bits to bytes."),
        (macs / ((n_out + batch) * n_in / 8 + 4 * batch * n_out),
         "a row of in_features signs takes ceil(in_features / 8) bytes: pack_bits pads the last byte of each row."),
        (macs / ((n_out + batch) * row),
         "the outputs are missing: the kernel writes one int32 count (4 bytes) per output."),
        (macs / ((n_out + batch) * row + batch * _packed_row_bytes(n_out)),
         "the outputs of xnor_matmul_packed are int32 counts, 4 bytes each, not packed signs."),
        (macs / (4 * n_in * n_out + batch * row + 4 * batch * n_out),
         "the weights are stored packed too: ceil(in_features / 8) bytes per output row, not float32."),
        (macs / (n_out * row + 4 * batch * n_in + 4 * batch * n_out),
         "the inputs are packed too (this is the intensity of a kernel that reads float32 inputs)."),
        (macs / (batch * ((n_out + 1) * row + 4 * n_out)),
         "the weights are read once for the whole batch, not once per input: that is what batching buys."),
        (_binary_fc_bytes(n_in, n_out, batch) / macs,
         "that is bytes per MAC; the arithmetic intensity is MACs per byte."),
    ]
    for value, hint in candidates:
        if math.isclose(got, value, rel_tol=1e-9):
            return hint
    return ("count MACs = in_features x out_features x batch, and bytes = (out_features + batch) x "
            "ceil(in_features / 8) for the packed weights and inputs, plus 4 bytes per int32 output.")


@self_check
def check_1(binary_fc_intensity) -> str:
    """Check ``binary_fc_intensity(in_features, out_features, batch)`` (MACs per byte)."""
    label = _label(1)
    expect(callable(binary_fc_intensity), label, "pass your function itself, e.g. check_1(binary_fc_intensity)")
    for n_in, n_out, batch in _INTENSITY_CASES:
        call = f"binary_fc_intensity({n_in}, {n_out}, {batch})"
        got = as_number(binary_fc_intensity(n_in, n_out, batch), label, call)
        expected = _binary_fc_intensity(n_in, n_out, batch)
        if not math.isclose(got, expected, rel_tol=1e-6):
            fail(label, f"{call} = {got:.6g} MAC/byte, expected {expected:.6g}. "
                        f"{_intensity_hint(got, n_in, n_out, batch)}")
    return passed(label, f"arithmetic intensity correct on {len(_INTENSITY_CASES)} layers, including rows that "
                         "are not a multiple of 8 signs")


# --- exercise 2: the roofline's bound on the binary-over-float32 speed-up ----------------------------------------

_BOUND_CASES = [  # (in, out, batch, float32 peak MAC/s, binary peak MAC/s, bandwidth B/s)
    (4096, 4096, 1, 166e9, 2658e9, 47e9),      # both memory-bound: the bytes decide
    (4096, 4096, 256, 166e9, 2658e9, 47e9),    # both compute-bound: the peaks decide
    (4096, 4096, 8, 166e9, 2658e9, 47e9),      # mixed: binary compute-bound, float32 still memory-bound
    (1024, 1000, 4, 50e9, 200e9, 20e9),        # mixed too
    (1000, 10, 1, 100e9, 400e9, 10e9),
    (512, 512, 64, 1e12, 8e12, 1e12),
]


def _bound_reference(n_in, n_out, batch, peak_float32, peak_binary, bandwidth) -> float:
    binary = hw.roofline(_binary_fc_intensity(n_in, n_out, batch), peak_binary, bandwidth)
    float32 = hw.roofline(_float_fc_intensity(n_in, n_out, batch), peak_float32, bandwidth)
    return binary / float32


def _bound_hint(got, n_in, n_out, batch, peak_float32, peak_binary, bandwidth) -> str:
    i_bin, i_f32 = _binary_fc_intensity(n_in, n_out, batch), _float_fc_intensity(n_in, n_out, batch)
    expected = _bound_reference(n_in, n_out, batch, peak_float32, peak_binary, bandwidth)
    candidates = [
        (1 / expected, "that is float32 over binary: the speed-up of binary is binary MAC/s over float32 MAC/s."),
        (peak_binary / peak_float32,
         "that is the ratio of the peaks, which holds only where both kernels are compute-bound; at this batch "
         "the memory roof decides: attainable = min(peak, intensity x bandwidth) for each, the smaller of the two "
         "ceilings, not the larger."),
        (i_bin / i_f32,
         "that is the ratio of the intensities, which holds only where both kernels are memory-bound; the compute "
         "roofs cap it: attainable = min(peak, intensity x bandwidth) for each."),
        (max(peak_binary, i_bin * bandwidth) / max(peak_float32, i_f32 * bandwidth),
         "the roofline is the smaller of the two ceilings (min), not the larger."),
    ]
    for value, hint in candidates:
        if math.isclose(got, value, rel_tol=1e-6):
            return hint
    return ("compute each kernel's intensity (float32: 4 bytes per weight, input and output; binary: packed "
            "weights and inputs, int32 outputs), its attainable MAC/s min(peak, intensity x bandwidth), then the "
            "ratio binary / float32.")


@self_check
def check_2(binary_speedup_bound) -> str:
    """Check ``binary_speedup_bound(in_features, out_features, batch, peak_float32, peak_binary, bandwidth)``."""
    label = _label(2)
    expect(callable(binary_speedup_bound), label, "pass your function itself, e.g. check_2(binary_speedup_bound)")
    for case in _BOUND_CASES:
        call = "binary_speedup_bound({}, {}, {}, {:g}, {:g}, {:g})".format(*case)
        got = as_number(binary_speedup_bound(*case), label, call)
        expected = _bound_reference(*case)
        if not math.isclose(got, expected, rel_tol=1e-6):
            fail(label, f"{call} = {got:.6g}, expected {expected:.6g}. {_bound_hint(got, *case)}")
    return passed(label, f"roofline bound correct on {len(_BOUND_CASES)} layers and machines, memory-bound, "
                         "compute-bound and mixed")
