"""The self-checks of "WRPN": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import wrpn as ex
from qteach.papers import wrpn

LABEL = "ex-wrpn-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def wrpn_weights(w, k):
    steps = 2 ** (k - 1) - 1
    return torch.round(w.clamp(-1, 1) * steps) / steps


def test_check_1_passes_the_solution(capsys):
    ex.check_1(wrpn_weights)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(wrpn.quantize_weights)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, k: torch.round(w.clamp(-1, 1) * (2**k - 1)) / (2**k - 1), "one of the k bits is the sign"),
    (lambda w, k: torch.round(w * (2 ** (k - 1) - 1)) / (2 ** (k - 1) - 1), "clip to [-1, 1] first"),
    (lambda w, k: torch.trunc(w.clamp(-1, 1) * (2 ** (k - 1) - 1)) / (2 ** (k - 1) - 1), "nearest level"),
    (lambda w, k: wrpn_weights(w, k).tolist(), "tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


def layer_bops(n_in, n_out, width, w_bits, a_bits):
    return (n_in * width) * (n_out * width) * w_bits * a_bits


def test_check_2_passes_the_solution(capsys):
    ex.check_2(layer_bops)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda i, o, m, wb, ab: i * o * m * wb * ab, "width^2"),
    (lambda i, o, m, wb, ab: i * o * m * m * (wb + ab), "do not add"),
    (lambda i, o, m, wb, ab: i * o * m * m, "those are the MACs"),
    (lambda i, o, m, wb, ab: i * o * wb * ab, "forgot the width"),
    (lambda i, o, m, wb, ab: str(layer_bops(i, o, m, wb, ab)), "number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
