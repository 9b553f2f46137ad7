"""The self-checks of the ReBNet chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import rebnet as ex

LABEL = "ex-rebnet-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def encode(x, gammas):
    planes, r = [], x
    for g in gammas.abs():
        b = sign(r)
        planes.append(b)
        r = r - g * b
    return planes


def encode_where(x, gammas):
    """Another correct answer: torch.where instead of sign, a tuple, bool planes converted at the end."""
    out, r = [], x.clone()
    for g in gammas.tolist():
        pos = r >= 0
        out.append(torch.where(pos, 1.0, -1.0))
        r = torch.where(pos, r - abs(g), r + abs(g))
    return tuple(out)


def enc_no_residual(x, gammas):
    return [sign(x) for _ in gammas]


def enc_torch_sign(x, gammas):
    planes, r = [], x
    for g in gammas.abs():
        b = torch.sign(r)
        planes.append(b)
        r = r - g * b
    return planes


def enc_signed_gamma(x, gammas):
    planes, r = [], x
    for g in gammas:
        b = sign(r)
        planes.append(b)
        r = r - g * b
    return planes


def test_check_1_passes(capsys):
    ex.check_1(encode)
    assert "✅ ex-rebnet-1 passed" in capsys.readouterr().out
    ex.check_1(encode_where)


@pytest.mark.parametrize("wrong,hint", [
    (enc_no_residual, "is sign(x) again"),
    (enc_torch_sign, "torch.sign(0)"),
    (enc_signed_gamma, "|gamma_l|"),
    (lambda x, g: encode(x, g)[:1], "one plane per level"),
    (lambda x, g: sign(x), "return a list"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def predicted_mse(m):
    return 4.0 ** (-m) / 3


def simulated_mse(m):
    """Another correct answer: measure it on a fine grid of U(-1, 1)."""
    x = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    r = x
    for _ in range(m):
        r = r - r.abs().mean() * sign(r)
    return torch.tensor((r ** 2).mean().item())


def test_check_2_passes(capsys):
    ex.check_2(predicted_mse)
    assert "✅ ex-rebnet-2 passed" in capsys.readouterr().out
    ex.check_2(simulated_mse)


@pytest.mark.parametrize("wrong,hint", [
    (lambda m: 2.0 ** (-m) / 3, "drops by 4, not 2"),
    (lambda m: 4.0 ** (-m + 1) / 3, "off by one"),
    (lambda m: 4.0 ** (-m), "a^2 / 3"),
    (lambda m: 0.1, "start from M = 0"),
    (lambda m: 1 / 3 * 0.3 ** m, "find gamma_1"),
    (lambda m: "0.1", "should be a"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
