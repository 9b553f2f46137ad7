"""The self-checks of "DoReFa-Net": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import dorefa_net as ex
from qteach.papers import dorefa_net as dorefa

LABEL = "ex-dorefa_net-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def my_quantize_k(r, k):
    n = 2**k - 1
    return torch.round(r * n) / n


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(my_quantize_k)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_accepts_equivalent_forms():
    ex.check_1(dorefa.quantize_k)
    ex.check_1(lambda r, k: torch.floor(r * (2**k - 1) + 0.5) / (2**k - 1))  # half up instead of half to even
    ex.check_1(lambda r, k: (r * (2**k - 1)).round() * (1.0 / (2**k - 1)))


@pytest.mark.parametrize("wrong, hint", [
    (lambda r, k: torch.floor(r * (2**k - 1)) / (2**k - 1), "floor"),
    (lambda r, k: torch.round(r * 2**k) / 2**k, "not 2^k"),
    (lambda r, k: torch.round(r * (2**k - 1)), "integer codes"),
    (lambda r, k: r, "round((2^k - 1) r)"),
    (lambda r, k: [0.0], "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


# --- exercise 2 ---------------------------------------------------------------------------------------------

def my_tanh_weights(w, k):
    t = torch.tanh(w)
    return 2 * dorefa.quantize_k(t / (2 * t.abs().max()) + 0.5, k) - 1


def test_check_2_passes_the_solution(capsys):
    line = ex.check_2(my_tanh_weights)
    assert line.startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    ex.check_2(dorefa.quantize_weights)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, k: dorefa.quantize_k(torch.tanh(w) / (2 * torch.tanh(w).abs().max()) + 0.5, k), "2 q - 1"),
    (lambda w, k: 2 * dorefa.quantize_k(torch.tanh(w) / 2 + 0.5, k) - 1, "2 max|tanh(w)|"),
    (lambda w, k: 2 * dorefa.quantize_k(torch.tanh(w) / (2 * w.abs().max()) + 0.5, k) - 1, "not of |w|"),
    (lambda w, k: 2 * dorefa.quantize_k(w / (2 * w.abs().max()) + 0.5, k) - 1, "apply tanh first"),
    (lambda w, k: my_tanh_weights(w, k).flatten(), "shape"),
    (lambda w, k: my_tanh_weights(w, k + 1), "r_o = 2 quantize_k"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message
