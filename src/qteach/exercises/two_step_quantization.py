"""Self-checks of the Two-Step Quantization chapter (notebooks/2018/two_step_quantization.ipynb).

Each check calls the student's function on fixed small problems, compares the *objective* its answer reaches with
the optimum (so every correct form passes: a float, a 0-d tensor, any tied optimum), and either prints the success
line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import itertools

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "two_step_quantization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _problem(seed: int, n: int = 4, rows: int = 24):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(rows, n, generator=g) > 0.4).double() * torch.randint(1, 4, (rows, n), generator=g).double()
    z = x @ torch.randn(n, generator=g, dtype=torch.float64) + 0.1 * torch.randn(rows, generator=g,
                                                                                   dtype=torch.float64)
    return x, z


def _err(x, z, alpha, w):
    return float(((z - alpha * (x @ w)) ** 2).sum())


# --- exercise 1: the best scale for fixed ternary weights ----------------------------------------------------


@self_check
def check_1(best_alpha) -> str:
    """Check ``best_alpha(x, z, w_t)`` -> the alpha minimising ||z - alpha X w_t||^2 (one output channel)."""
    label = _label(1)
    expect(callable(best_alpha), label, "pass your function itself, e.g. check_1(best_alpha)")
    for seed in range(3):
        x, z = _problem(seed)
        w = torch.tensor([1.0, -1.0, 0.0, 1.0], dtype=torch.float64)
        v = x @ w
        exact = float(z @ v / (v @ v))
        a = as_number(best_alpha(x.clone(), z.clone(), w.clone()), label, "alpha")
        if abs(a - exact) <= 1e-6 * max(1.0, abs(exact)):
            continue
        if abs(a - float(z @ v / (w @ w))) < 1e-6 * max(1.0, abs(a)):
            fail(label, "you divided by ||w||^2 (TWN's formula for approximating weights); here the fit is on the "
                        "outputs, so divide by ||X w||^2.")
        if abs(a - float(z @ v)) < 1e-6 * max(1.0, abs(a)):
            fail(label, "you forgot the denominator ||X w||^2.")
        if abs(a - float(z.abs().mean())) < 1e-6 * max(1.0, abs(a)) or abs(a - float(x.abs().mean())) < 1e-6:
            fail(label, "a mean magnitude is the TWN-style scale of a tensor, not the least-squares scale of the "
                        "outputs: set the derivative of ||z - alpha v||^2 (v = X w) to zero.")
        fail(label, f"for one of the test problems alpha should be {exact:.4f}, got {a:.4f}: with v = X w, "
                    "alpha = <z, v> / <v, v>.")
    return passed(label, "alpha = <z, Xw> / ||Xw||^2, the least-squares scale of the outputs")


# --- exercise 2: the exact ternary fit of a tiny layer --------------------------------------------------------


def _brute(x, z):
    best = float("inf")
    for p in itertools.product([-1.0, 0.0, 1.0], repeat=x.shape[1]):
        w = torch.tensor(p, dtype=torch.float64)
        v = x @ w
        a = float(z @ v / (v @ v)) if float(v @ v) > 0 else 0.0
        best = min(best, _err(x, z, a, w))
    return best


@self_check
def check_2(exact_ternary_fit) -> str:
    """Check ``exact_ternary_fit(x, z)`` -> ``(alpha, w_t)`` with w_t in {-1, 0, 1}^n minimising ||z - alpha X w_t||^2
    over all ternary filters (n = 4: 81 of them)."""
    label = _label(2)
    expect(callable(exact_ternary_fit), label, "pass your function itself, e.g. check_2(exact_ternary_fit)")
    for seed in (10, 11, 12, 13):
        x, z = _problem(seed)
        result = exact_ternary_fit(x.clone(), z.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label, "return a pair (alpha, w_t)")
        a = as_number(result[0], label, "alpha")
        w = torch.as_tensor(result[1], dtype=torch.float64).reshape(-1)
        expect(w.numel() == x.shape[1], label, f"w_t must have {x.shape[1]} entries, one per input")
        expect(set(w.tolist()) <= {-1.0, 0.0, 1.0}, label, "w_t must hold only -1, 0 and +1 (the scale goes "
                                                            "in alpha)")
        ours, best = _err(x, z, a, w), _brute(x, z)
        if ours <= best * (1 + 1e-6) + 1e-9:
            continue
        # Plausible mistakes, recognised by the answer they give.
        ls = torch.linalg.lstsq(x, z[:, None]).solution.reshape(-1)
        from qteach.papers import ternary_weight_networks as twn
        w_twn, a_twn, _ = twn.ternary_weights(ls)
        if torch.equal(w, w_twn):
            fail(label, "ternarizing the float least-squares solution (TWN on the weights) is not the optimum of "
                        "the output error: try all 3^n ternary filters, each with its best alpha.")
        v = x @ w
        if float(v @ v) > 0 and abs(a - float(z @ v / (v @ v))) > 1e-6 * max(1.0, abs(a)):
            fail(label, "for your w_t, alpha is not the best scale: use alpha = <z, Xw> / ||Xw||^2 for each "
                        "candidate before comparing errors.")
        fail(label, f"some ternary filter has a smaller error ({best:.4f} against your {ours:.4f}): compare all "
                    "3^n candidates (itertools.product([-1, 0, 1], repeat=n)), each with its best alpha.")
    return passed(label, "your fit reaches the brute-force optimum over all 81 ternary filters")
