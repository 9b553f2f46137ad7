"""The self-checks of "ABC-Net": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach import binary
from qteach.exercises import abc_net as ex
from qteach.papers import abc_net as abc

LABEL = "ex-abc_net-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def _u(m, w):
    u = torch.tensor([-1.0 + i * 2.0 / (m - 1) for i in range(m)]) if m > 1 else torch.zeros(1)
    return u.to(w.dtype).reshape(-1, *([1] * w.dim()))


def abc_bases(w, m):
    return binary.sign(w - w.mean() + _u(m, w) * w.std(unbiased=False))


def test_check_1_passes_the_solution(capsys):
    ex.check_1(abc_bases)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(abc.binary_bases)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, m: torch.sign(w - w.mean() + _u(m, w) * w.std(unbiased=False)), "sign(0) = +1"),
    (lambda w, m: binary.sign(w + _u(m, w) * w.std(unbiased=False)), "centre the weights"),
    (lambda w, m: binary.sign(w - w.mean() + torch.linspace(0, 1, m).reshape(_u(m, w).shape)
                              * w.std(unbiased=False)), "spread over [-1, 1]"),
    (lambda w, m: binary.sign(w - w.mean() + _u(m, w)), "standard deviation"),
    (lambda w, m: abc_bases(w, m).movedim(0, -1), "shape"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


def abc_alphas(w, bases):
    b = bases.reshape(bases.shape[0], -1).T
    return torch.linalg.lstsq(b, w.reshape(-1, 1)).solution.reshape(-1)


def test_check_2_passes_the_solution(capsys):
    ex.check_2(abc_alphas)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out
    ex.check_2(abc.basis_scales)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, b: b.reshape(b.shape[0], -1) @ w.reshape(-1) / w.numel(), "basis i alone"),
    (lambda w, b: torch.full((b.shape[0],), w.abs().mean().item()), "XNOR-Net"),
    (lambda w, b: abc_alphas(w, b)[:1], "one per basis"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
