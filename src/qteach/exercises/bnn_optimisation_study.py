"""Self-checks of the chapter on the empirical study of BNN optimisation
(notebooks/2019/bnn_optimisation_study.ipynb).

Each check calls the student's function, compares it with a closed form or a reference simulation, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "bnn_optimisation_study"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _numbers(value, label: str, what: str) -> list:
    if isinstance(value, torch.Tensor):
        value = value.flatten().tolist()
    expect(isinstance(value, (list, tuple)), label, f"{what} should be a list (or tuple, tensor) of numbers, got "
                                                    f"{type(value).__name__}")
    return [as_number(v, label, f"an entry of {what}") for v in value]


# --- exercise 1: the official learning-rate schedule -----------------------------------------------------------


def _schedule(start, finish, epochs, power=lambda e, n: e / n):
    return [start * (finish / start) ** power(e, epochs) for e in range(epochs)]


_CASES = ((3e-3, 2e-6, 10), (0.1, 0.01, 8), (1.0, 0.1, 4), (0.05, 0.05, 3), (0.01, 0.1, 5))


@self_check
def check_1(lr_schedule) -> str:
    """Check ``lr_schedule(start, finish, epochs)``: the learning rate of each epoch, 0 .. epochs - 1."""
    label = _label(1)
    expect(callable(lr_schedule), label, "pass your function itself, e.g. check_1(lr_schedule)")
    got = {c: _numbers(lr_schedule(*c), label, f"lr_schedule{c}") for c in _CASES}

    def all_near(reference):
        return all(len(got[c]) == len(reference(*c)) and all(abs(a - b) <= 1e-6 * abs(b) + 1e-12
                                                              for a, b in zip(got[c], reference(*c)))
                   for c in _CASES)

    if all_near(_schedule):
        return passed(label, "eta_e = start * (finish / start) ** (e / N): the last epoch stays one step above finish")
    if any(len(got[c]) != c[2] for c in _CASES):
        fail(label, "return one learning rate per epoch: a list of length epochs (epochs 0 .. epochs - 1).")
    if all_near(lambda s, f, n: _schedule(s, f, n, lambda e, m: e / max(m - 1, 1))):
        fail(label, "the official rate is (finish / start) ** (1 / N) with N the number of epochs, so the last "
                    "epoch (e = N - 1) is still above finish; you divided by N - 1.")
    if all_near(lambda s, f, n: [s + (f - s) * e / n for e in range(n)]):
        fail(label, "that is a linear decay; the official schedule multiplies by the same factor every epoch "
                    "(exponential decay).")
    if all_near(lambda s, f, n: _schedule(s, f, n, lambda e, m: (e + 1) / m)):
        fail(label, "the first epoch uses the start learning rate itself: the exponent is e / N for e = 0 .. N - 1.")
    fail(label, "epoch e uses start * rate ** e with rate = (finish / start) ** (1 / epochs).")


# --- exercise 2: what the two clippings do to one latent weight ------------------------------------------------


def _trajectory(w, grads, lr, gradient_clipping, weight_clipping, grad_test=lambda w: abs(w) <= 1,
                clip_first=False):
    for g in grads:
        if clip_first and weight_clipping:
            w = min(max(w, -1.0), 1.0)
        if gradient_clipping and not grad_test(w):
            g = 0.0
        w = w - lr * g
        if weight_clipping and not clip_first:
            w = min(max(w, -1.0), 1.0)
    return w


_GRADS = (
    (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0),
    (-0.5, -0.5, -0.5, -0.5, 2.0, 2.0, 2.0),
    (1.0, 1.0, -1.0, -1.0, -1.0),
    (-2.0, 0.5, 0.5, 0.5, 0.5, 0.5),
)
_STARTS = (0.3, 0.9, -0.95, 0.0)


@self_check
def check_2(latent_weight) -> str:
    """Check ``latent_weight(w0, grads, lr, gradient_clipping, weight_clipping)``: the latent weight after SGD."""
    label = _label(2)
    expect(callable(latent_weight), label, "pass your function itself, e.g. check_2(latent_weight)")
    cases = [(w0, grads, lr, gc, wc) for w0, grads in zip(_STARTS, _GRADS) for lr in (0.3, 0.7)
             for gc in (False, True) for wc in (False, True)]
    got = [as_number(latent_weight(*c), label, f"latent_weight{c}") for c in cases]

    def all_near(**variant):
        return all(abs(a - _trajectory(*c, **variant)) <= 1e-6 for a, c in zip(got, cases))

    if all_near():
        return passed(label, "gradient clipping alone can freeze a weight that left [-1, 1] forever; weight "
                             "clipping keeps it at the border, one update away from returning")
    if all_near(grad_test=lambda w: abs(w) < 1):
        fail(label, "tf.clip_by_value passes the gradient at the border itself: the gradient is cancelled only "
                    "where |w| > 1 (strictly).")
    if all_near(grad_test=lambda w: abs(w) >= 1):
        fail(label, "the gradient is cancelled OUTSIDE [-1, 1] (|w| > 1), not inside.")
    if all_near(clip_first=True):
        fail(label, "weight clipping is applied after each update (a constraint on the updated variable), not "
                    "before it.")
    fail(label, "for each gradient g: set g to 0 if gradient_clipping and |w| > 1; w = w - lr * g; then, if "
                "weight_clipping, clamp w to [-1, 1].")
