"""The self-checks of "DoReFa-Net": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import dorefa_net as ex
from qteach.papers import dorefa_net as dorefa

LABEL = "ex-dorefa_net-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def gradient_std(dr, k):
    n = 2**k - 1
    m = dr.abs().max()
    x = (dr / (2 * m) + 0.5) * n
    p = x - x.floor()
    return 2 * m * torch.sqrt(p * (1 - p)) / n


def gradient_std_from_levels(dr, k):
    """Another correct answer: E[q^2] - E[q]^2 from the two levels around x, in float32."""
    n = 2**k - 1
    m = dr.abs().max()
    x = dr / (2 * m) + 0.5
    low = torch.floor(x * n) / n
    high = low + 1 / n
    p_up = (x - low) / (high - low)
    mean = p_up * high + (1 - p_up) * low
    var = p_up * high**2 + (1 - p_up) * low**2 - mean**2
    return (2 * m * var.clamp(min=0).sqrt()).float()


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(gradient_std)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_accepts_equivalent_forms():
    ex.check_1(gradient_std_from_levels)
    ex.check_1(lambda dr, k: 2 * dr.abs().max() * torch.sqrt(
        (torch.ceil(x := (dr / (2 * dr.abs().max()) + 0.5) * (2**k - 1)) - x) * (x - torch.floor(x))) / (2**k - 1))


def test_the_solution_matches_sampling():
    dr = torch.tensor([0.02, -0.1, 0.3, -1.0], dtype=torch.float64)
    draws = dorefa.quantize_gradient(dr.expand(100_000, 4), 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(draws.std(0), gradient_std(dr, 2), atol=0.005)


def _sampled(dr, k):
    draws = dorefa.quantize_gradient(dr.expand(20_000, dr.numel()), k, generator=torch.Generator().manual_seed(0))
    return draws.std(0)


@pytest.mark.parametrize("wrong, hint", [
    (lambda dr, k: gradient_std(dr, k) ** 2, "variance"),
    (lambda dr, k: gradient_std(dr, k) / (2 * dr.abs().max()), "wrong scale"),
    (lambda dr, k: gradient_std(dr, k) / 2, "wrong scale"),
    (lambda dr, k: torch.full_like(dr, 2 * float(dr.abs().max()) / ((2**k - 1) * 12**0.5)), "added noise"),
    (lambda dr, k: 2 * dr.abs().max() * torch.sqrt((x := dr / (2 * dr.abs().max()) + 0.5) * (1 - x)),
     "1/(2^k - 1)"),
    (_sampled, "do not sample"),
    (lambda dr, k: gradient_std(dr, k)[:-1], "shape"),
    (lambda dr, k: [0.0], "should be a Tensor"),
    (lambda dr, k: gradient_std(dr, k + 1), "p (1 - p)"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message, message


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
