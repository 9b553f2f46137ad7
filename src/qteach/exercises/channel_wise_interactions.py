"""Self-checks of the CI-BCNN chapter (notebooks/2019/channel_wise_interactions.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.channel_wise_interactions` or a
closed form, and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import channel_wise_interactions as ci

_SLUG = "channel_wise_interactions"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: one edge of the interacted bitcount ------------------------------------------------------------


def _cases():
    g = torch.Generator().manual_seed(5)
    yield torch.randint(-40, 41, (3, 4, 5, 5), generator=g), 1, 2, 1, 10, 7
    yield torch.randint(-40, 41, (2, 3, 4, 4), generator=g), 2, 0, -1, 10, 7
    y = torch.zeros(1, 2, 1, 4, dtype=torch.int64)
    y[0, 0, 0] = torch.tensor([-10, -9, 9, 10])  # exactly at the threshold counts as confident
    yield y, 0, 1, -1, 10, 3
    yield torch.randint(-40, 41, (2, 3, 4, 4), generator=g).float(), 0, 1, 1, 5, 2


@self_check
def check_1(apply_edge) -> str:
    """Check ``apply_edge(y, src, dst, sign, threshold, strength)`` -> the maps after one interacted-bitcount edge."""
    label = _label(1)
    expect(callable(apply_edge), label, "pass your function itself, e.g. check_1(apply_edge)")
    for y, src, dst, s, tau, c in _cases():
        before = y.clone()
        out = apply_edge(y.clone(), src, dst, s, tau, c)
        expect_type(out, torch.Tensor, label, "the result")
        expect(out.shape == y.shape, label, f"return maps of shape {tuple(y.shape)}, got {tuple(out.shape)}")
        ref = ci.interacted_bitcount(before, [(src, dst, s)], tau, c)
        if torch.equal(out.to(ref.dtype), ref):
            continue
        others = [k for k in range(y.shape[1]) if k != dst]
        if not torch.equal(out[:, others].to(ref.dtype), before[:, others]):
            fail(label, "only the target channel dst may change; the source channel and the others stay as they "
                        "were.")
        prior = (before[:, src] > tau).to(y.dtype) - (before[:, src] < -tau).to(y.dtype)
        if torch.equal(out[:, dst].to(ref.dtype), before[:, dst] + c * s * prior):
            fail(label, "a pixel exactly at the threshold counts: use y >= tau and y <= -tau, as the official "
                        "torch.ge / torch.le.")
        if torch.equal(out[:, dst].to(ref.dtype), before[:, dst] + c * ci.interaction_prior(before[:, src], tau)):
            fail(label, "a negative edge (sign = -1) must push the target the other way: multiply by the sign.")
        fail(label, "y_dst should become y_dst + strength * sign * (1[y_src >= tau] - 1[y_src <= -tau]).")
    return passed(label, "your edge update equals the interacted bitcount on 4 cases (both signs, threshold ties, "
                         "float maps)")


# --- exercise 2: the official negative edge ---------------------------------------------------------------------

_SRC = torch.tensor([-300.0, -50.0, 250.0])
_DST = torch.tensor([10.0, 10.0, 10.0])


@self_check
def check_2(predict) -> str:
    """Check ``predict()`` -> (official, symmetric): y_dst after a negative edge with the official line 103 and with
    the sign-symmetric form, for y_src = [-300, -50, 250], y_dst = [10, 10, 10], tau = 200, c = 100."""
    label = _label(2)
    expect(callable(predict), label, "pass your function itself, e.g. check_2(predict)")
    answer = predict()
    expect(isinstance(answer, (tuple, list)) and len(answer) == 2, label,
           "return a pair: (official result, symmetric result), each three numbers")
    official, symmetric = (torch.as_tensor(a, dtype=torch.float32).flatten() for a in answer)
    expect(official.numel() == 3 and symmetric.numel() == 3, label, "each result has one number per pixel: three")
    want_official = _DST - 100 * ((_SRC >= 200).float() + (_SRC <= -200).float())
    want_symmetric = _DST - 100 * ((_SRC >= 200).float() - (_SRC <= -200).float())
    if torch.equal(official, want_official) and torch.equal(symmetric, want_symmetric):
        return passed(label, "the official line pushes y_dst down at both confident pixels; the symmetric form "
                             "pushes it up where y_src is confidently negative")
    if torch.equal(official, want_symmetric) and torch.equal(symmetric, want_official):
        fail(label, "the two results are swapped: the official line adds the two indicators, (ge + le).")
    if official[1] != 10 or symmetric[1] != 10:
        fail(label, "y_src = -50 is inside (-200, 200): no prior, y_dst keeps 10 in both forms.")
    if not torch.equal(official, want_official):
        fail(label, "the official line 103 is x - (ge(dep, 200) + le(dep, -200)) * 100: both confident pixels "
                    "move down by 100.")
    fail(label, "the symmetric form is x + c * s * (ge - le) with s = -1: down where y_src >= 200, up where "
                "y_src <= -200.")
