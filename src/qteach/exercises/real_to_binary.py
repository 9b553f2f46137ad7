"""Self-checks of the Real-to-Binary Net chapter (notebooks/2020/real_to_binary.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "real_to_binary"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the attention map with attention transfer's L2 normalisation ---------------------------------


def _maps(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 5, 2, 4, generator=g) * torch.tensor([1.0, 3.0, 0.5])[:, None, None, None]


@self_check
def check_1(attention_map_l2) -> str:
    """Check ``attention_map_l2(a)``: per example, the channels' squares averaged (or summed) over the channels,
    flattened, divided by their L2 norm."""
    label = _label(1)
    expect(callable(attention_map_l2), label, "pass your function itself, e.g. check_1(attention_map_l2)")
    for seed in (0, 1, 2):
        a = _maps(seed)
        got = attention_map_l2(a.clone())
        expect_type(got, torch.Tensor, label, "attention_map_l2(a)")
        q = a.pow(2).mean(dim=1).flatten(1)
        expected = q / q.norm(dim=1, keepdim=True)
        expect(got.numel() == expected.numel(), label, f"one value per example and position: (N, H*W) = "
                                                       f"{tuple(expected.shape)}, got {tuple(got.shape)}")
        got = got.detach().reshape(expected.shape)
        if torch.allclose(got, q / q.amax(dim=1, keepdim=True), atol=1e-5):
            fail(label, "that divides by the maximum (larq zoo's form): divide by the L2 norm of each row.")
        if torch.allclose(got, q / q.norm(), atol=1e-5):
            fail(label, "one norm for the whole batch: normalise each example's map by its own L2 norm "
                        "(norm(dim=1, keepdim=True)).")
        qa = a.abs().mean(dim=1).flatten(1)
        if torch.allclose(got, qa / qa.norm(dim=1, keepdim=True), atol=1e-5):
            fail(label, "that averages |A_c|: the map averages the squares A_c ** 2.")
        expect(torch.allclose(got, expected, rtol=1e-4, atol=1e-6), label,
               "Q = mean (or sum) over the channels (dim 1) of a ** 2, flattened to (N, H*W), then each row divided "
               "by its L2 norm.")
    return passed(label, "mean or sum over channels: the L2 normalisation removes the 1/C factor")


# --- exercise 2: the gate's cost ------------------------------------------------------------------------------

_GATES = ((16, 16, 8), (64, 64, 8), (64, 128, 8), (12, 12, 8), (10, 20, 4), (3, 5, 8))


def _gate_parameters(cin: int, cout: int, r: int) -> int:
    hidden = -(-cin // r)
    return hidden * (cin + cout)


@self_check
def check_2(gate_parameters) -> str:
    """Check ``gate_parameters(in_channels, out_channels, ratio)``: the real-valued weights of one
    :class:`~qteach.papers.real_to_binary.ChannelGate` (ceil(C_in / r) hidden units, no biases)."""
    label = _label(2)
    expect(callable(gate_parameters), label, "pass your function itself, e.g. check_2(gate_parameters)")
    for cin, cout, r in _GATES:
        got = gate_parameters(cin, cout, r)
        expect(isinstance(got, (int, float)) and not isinstance(got, bool) or (
            isinstance(got, torch.Tensor) and got.numel() == 1), label,
            f"gate_parameters({cin}, {cout}, {r}) should return a number, got {type(got).__name__}")
        got = float(got)
        expected = _gate_parameters(cin, cout, r)
        if cin % r and abs(got - (cin // r) * (cin + cout)) < 1e-9:
            fail(label, f"for C_in = {cin}, r = {r} the hidden layer has ceil({cin}/{r}) = {-(-cin // r)} units "
                        "(the gate keeps at least one): round up, not down.")
        if abs(got - _gate_parameters(cin, cout, r) - (-(-cin // r)) - cout) < 1e-9:
            fail(label, "the gate's two linear layers have no biases (bias=False).")
        if abs(got - 2 * (-(-cin // r)) * cin) < 1e-9 and cin != cout:
            fail(label, "the second layer maps the hidden units to the *output* channels: C_out x hidden.")
        expect(abs(got - expected) < 1e-9, label,
               f"gate_parameters({cin}, {cout}, {r}) should be ceil(C_in / r) * (C_in + C_out) = {expected}, got "
               f"{got:g}: W_1 is hidden x C_in, W_2 is C_out x hidden.")
    return passed(label, "64 real weights per protocol block, beside its 1,280 binary ones")
