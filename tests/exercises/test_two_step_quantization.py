"""The self-checks of the Two-Step Quantization chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import itertools

import pytest
import torch

from qteach.exercises import two_step_quantization as ex
from qteach.papers import ternary_weight_networks as twn
from qteach.papers import two_step_quantization as tsq

LABEL = "ex-two_step_quantization-{}"


def best_alpha(x, z, w_t):
    v = x @ w_t
    return (z @ v) / (v @ v)


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(best_alpha)
    assert "✅ ex-two_step_quantization-1 passed" in capsys.readouterr().out


def test_check_1_accepts_other_forms():
    ex.check_1(lambda x, z, w: float(tsq.solve_alpha(x, z[:, None], w[None, :])[0]))
    ex.check_1(lambda x, z, w: torch.linalg.lstsq((x @ w)[:, None], z[:, None]).solution.reshape(()))


@pytest.mark.parametrize("wrong,hint", [
    (lambda x, z, w: (z @ (x @ w)) / (w @ w), "divided by ||w||^2"),
    (lambda x, z, w: z @ (x @ w), "forgot the denominator"),
    (lambda x, z, w: z.abs().mean(), "mean magnitude"),
    (lambda x, z, w: 0.5, "should be"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


def exact_ternary_fit(x, z):
    best = (float("inf"), None, None)
    for p in itertools.product([-1.0, 0.0, 1.0], repeat=x.shape[1]):
        w = torch.tensor(p, dtype=x.dtype)
        v = x @ w
        a = float(z @ v / (v @ v)) if float(v @ v) > 0 else 0.0
        err = float(((z - a * v) ** 2).sum())
        if err < best[0]:
            best = (err, a, w)
    return best[1], best[2]


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(exact_ternary_fit)
    assert "✅ ex-two_step_quantization-2 passed" in capsys.readouterr().out


def test_check_2_accepts_the_alternating_solver_and_a_sign_flip():
    def vectorised(x, z):  # all 81 candidates at once, alpha from solve_alpha
        cands = torch.cartesian_prod(*[torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype)] * x.shape[1])
        alpha = tsq.solve_alpha(x, z[:, None].expand(-1, len(cands)).contiguous(), cands)
        best = int(tsq.linear_objective(x, z[:, None].expand(-1, len(cands)), alpha, cands).argmin())
        return alpha[best], cands[best]
    ex.check_2(vectorised)

    def flipped(x, z):
        a, w = exact_ternary_fit(x, z)
        return -a, (-w).tolist()
    ex.check_2(flipped)


def twn_on_lstsq(x, z):
    ls = torch.linalg.lstsq(x, z[:, None]).solution.reshape(-1)
    w, a, _ = twn.ternary_weights(ls)
    v = x @ w
    return float(z @ v / (v @ v)), w


def wrong_alpha(x, z):
    a, w = exact_ternary_fit(x, z)
    return a * 1.3, w


@pytest.mark.parametrize("wrong,hint", [
    (twn_on_lstsq, "ternarizing the float least-squares solution"),
    (wrong_alpha, "not the best scale"),
    (lambda x, z: (1.0, torch.zeros(4)), "some ternary filter has a smaller error"),
    (lambda x, z: (1.0, torch.tensor([0.5, 1.0, 0.0, 1.0])), "only -1, 0 and +1"),
    (lambda x, z: (1.0, torch.ones(3)), "4 entries"),
    (lambda x, z: 1.0, "return a pair"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
