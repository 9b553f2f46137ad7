"""The self-checks of the SeerNet chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import seernet as ex
from qteach.papers import seernet

# --- exercise 1 ---------------------------------------------------------------------------------------------


def channel_bound(w, x_max, bits):
    codes, scale = seernet.quantize_weights(w, bits)
    eps = (w.double() - scale.view(-1, 1, 1, 1) * codes).abs().flatten(1).amax(1)
    s_x = x_max / (2**bits - 1)
    return s_x / 2 * w.abs().flatten(1).sum(1) + eps * w[0].numel() * x_max


def channel_bound_loop(w, x_max, bits):
    """Another correct answer: a loop over channels, float32, plus the book's float slack."""
    codes, scale = seernet.quantize_weights(w, bits)
    out = []
    for c in range(w.shape[0]):
        eps = float((w[c].double() - scale[c] * codes[c]).abs().max())
        k = w.shape[1] * w.shape[2] * w.shape[3]
        out.append(x_max / (2**bits - 1) / 2 * float(w[c].abs().sum()) + eps * k * x_max + seernet.FLOAT_SLACK)
    return torch.tensor(out, dtype=torch.float32)


def _variant(**kw):
    return lambda w, x_max, bits: ex._bound(w, x_max, bits, **kw)


def test_check_1_passes(capsys):
    ex.check_1(channel_bound)
    assert "✅ ex-seernet-1 passed" in capsys.readouterr().out


def test_check_1_accepts_another_form(capsys):
    ex.check_1(channel_bound_loop)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (_variant(step=1.0), "half a step"),
    (_variant(weight_term=False), "weights are quantized too"),
    (_variant(window=False), "summed over the whole window"),
    (lambda w, x_max, bits: ex._bound(w, x_max, bits, levels=2**bits), "2^b - 1"),
    (lambda w, x_max, bits: torch.zeros(w.shape[0]), "use s_x"),
    (lambda w, x_max, bits: torch.zeros(3, 3), "one bound per output channel"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match="ex-seernet-1") as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def test_check_2_passes(capsys):
    ex.check_2(lambda b: 1 - b * b / 1024)
    assert "✅ ex-seernet-2 passed" in capsys.readouterr().out


def test_check_2_accepts_another_form(capsys):
    ex.check_2(lambda b: torch.tensor((32.0**2 - b**2) / 32.0**2))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda b: 1 - b / 32, "b^2 / 32^2"),
    (lambda b: b * b / 1024, "left"),
    (lambda b: 1 - b * b / 32, "1024 bit operations"),
    (lambda b: 0.5, "solve"),
    (lambda b: "0.5", "should be a number"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match="ex-seernet-2") as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
