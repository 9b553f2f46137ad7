"""Self-checks of the BNN information-bottleneck chapter (notebooks/2020/information_bottleneck_bnn.ipynb).

Each check calls the student's function on fixed cases, compares it with the exact answer, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers.information_bottleneck_bnn import discrete_information, entropy_bits

_SLUG = "information_bottleneck_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _codes(seed: int, n: int, width: int, classes: int):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 2, (n, width), generator=g).float() * 2 - 1
    y = torch.randint(0, classes, (n,), generator=g)
    y[: n // 3] = ((t[: n // 3, 0] > 0).long() % classes)  # make T informative about Y
    return t, y


# --- exercise 1: I(T;Y) by counting codes ---------------------------------------------------------------------


@self_check
def check_1(mutual_information) -> str:
    """Check ``mutual_information(t, y)``: I(T;Y) in bits of the codes ``t`` (N, width) and labels ``y`` (N,)."""
    label = _label(1)
    expect(callable(mutual_information), label, "pass your function itself, e.g. check_1(mutual_information)")
    for seed, (n, width, classes) in enumerate(((200, 3, 4), (97, 1, 2), (300, 5, 10))):
        t, y = _codes(seed, n, width, classes)
        got = as_number(mutual_information(t.clone(), y.clone()), label, "mutual_information(t, y)")
        h_t, expected = discrete_information(t, y)
        h_y = entropy_bits(torch.bincount(y))
        if abs(got - expected * math.log(2)) < 1e-6 and expected > 1e-3:
            fail(label, "that is the value in nats: use log base 2 (torch.log2) so the answer is in bits.")
        if abs(got - h_t) < 1e-6 and abs(h_t - expected) > 1e-3:
            fail(label, "that is H(T) = I(X;T): subtract what T leaves unknown about Y, "
                        "I(T;Y) = H(T) + H(Y) - H(T, Y).")
        if abs(got - h_y) < 1e-6 and abs(h_y - expected) > 1e-3:
            fail(label, "that is H(Y): I(T;Y) = H(Y) - H(Y|T), the label entropy minus what remains once the code "
                        "is known.")
        expect(abs(got - expected) < 1e-6, label,
               f"I(T;Y) should be {expected:.4f} bits here, got {got:.4f}: count the codes (torch.unique(t, dim=0, "
               "return_inverse=True)), the labels and the (code, label) pairs, and use H(T) + H(Y) - H(T, Y), "
               "each H = -sum p log2 p with p = count / N (weight H(Y|T=c) by p(c) if you go that way).")
    return passed(label, "I(T;Y) = H(T) + H(Y) - H(T, Y), counted exactly")


# --- exercise 2: is the next layer a function of this one? ----------------------------------------------------


def _cases():
    g = torch.Generator().manual_seed(5)
    a = torch.randint(0, 2, (60, 4), generator=g).float() * 2 - 1
    w = torch.randn(4, 3, generator=g)
    yes = [(a, torch.where(a @ w >= 0, 1.0, -1.0)), (a, torch.ones(60, 2)), (a, a.clone())]
    b = a.clone()
    b[1] = b[0]                               # two samples share a code ...
    c = torch.where(a @ w >= 0, 1.0, -1.0)
    c[1] = -c[0]                              # ... but not the next layer's code
    no = [(b, c), (a[:, :1].clone(), a[:, 1:2].clone())]  # 2 codes each, but one column says nothing of the other
    return yes, no


@self_check
def check_2(determines) -> str:
    """Check ``determines(t_prev, t_next)``: True iff samples with equal rows of t_prev have equal rows of t_next."""
    label = _label(2)
    expect(callable(determines), label, "pass your function itself, e.g. check_2(determines)")
    yes, no = _cases()
    for t_prev, t_next in yes:
        got = determines(t_prev.clone(), t_next.clone())
        expect_type(got, (bool, torch.Tensor), label, "determines(t_prev, t_next)")
        expect(bool(got), label, "this next layer is a deterministic function of the previous one (e.g. sign of a "
                                 "linear map of it) but your function says no: compare the number of distinct "
                                 "previous codes with the number of distinct (previous, next) pairs.")
    t_prev, t_next = no[1]
    if bool(determines(t_prev.clone(), t_next.clone())):
        fail(label, "one random +-1 column does not determine another, although both have two codes: comparing "
                    "entropies (H(next) <= H(prev)) or code counts of each layer alone is not enough; count the "
                    "distinct (previous, next) pairs.")
    t_prev, t_next = no[0]
    if bool(determines(t_prev.clone(), t_next.clone())):
        fail(label, "samples 0 and 1 share their previous code but not their next one, so the next layer is not a "
                    "function of the previous one: check every previous code, e.g. the number of distinct rows of "
                    "torch.cat([t_prev, t_next], 1) equals that of t_prev.")
    return passed(label, "T_next is a function of T_prev exactly when pairs and previous codes are equally many")
