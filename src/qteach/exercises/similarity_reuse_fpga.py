"""Self-checks of the similarity-reuse chapter (notebooks/2018/similarity_reuse_fpga.ipynb).

Each check calls the student's function, compares it with the direct computation or a closed form, and either prints
the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check

_SLUG = "similarity_reuse_fpga"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: weight reuse from the complement of a dissimilar kernel ----------------------------------------


def _signs(*shape, generator):
    return torch.where(torch.rand(*shape, generator=generator) < 0.5, -1.0, 1.0)


def _cases():
    g = torch.Generator().manual_seed(5)
    u = _signs(7, 16, generator=g)
    w_ref = _signs(16, generator=g)
    flip_few, flip_many = w_ref.clone(), -w_ref.clone()
    flip_few[[1, 4, 9]] *= -1                       # 3 of 16 bits differ: correct from +y_ref
    flip_many[[0, 5]] *= -1                         # 14 of 16 differ: correct from -y_ref
    half = w_ref.clone()
    half[:8] *= -1                                  # exactly half differ: both ways cost 8
    yield u, w_ref, flip_few
    yield u, w_ref, flip_many
    yield u, w_ref, half
    yield u, w_ref, w_ref.clone()                   # identical: nothing to compute
    yield u, w_ref, -w_ref                          # opposite: y_new = -y_ref for free
    u2, a, b = _signs(5, 33, generator=g), _signs(33, generator=g), _signs(33, generator=g)
    yield u2, a, b                                  # odd K, random pair


@self_check
def check_1(complement_reuse) -> str:
    """Check ``complement_reuse(y_ref, w_ref, w_new, u) -> (y_new, ops)``."""
    label = _label(1)
    expect(callable(complement_reuse), label, "pass your function itself, e.g. check_1(complement_reuse)")
    for u, w_ref, w_new in _cases():
        y_ref = (u @ w_ref).to(torch.int64)
        k, differ = u.shape[1], int((w_new != w_ref).sum())
        result = complement_reuse(y_ref.clone(), w_ref.clone(), w_new.clone(), u.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               "return a pair (y_new, ops): the new outputs and the number of XNORs per window")
        y_new, ops = result
        expect_type(y_new, torch.Tensor, label, "y_new")
        expect(y_new.shape == y_ref.shape, label, f"y_new should have the shape {tuple(y_ref.shape)} of y_ref")
        direct = (u @ w_new).to(torch.int64)
        if not torch.equal(y_new.to(torch.int64), direct):
            if differ > k / 2 and torch.equal(y_new.to(torch.int64), -y_ref + (u @ (w_new - w_ref)).long()):
                fail(label, "starting from -y_ref, correct on the positions where the kernels AGREE "
                            "(add 2 * w_new[i] * u[:, i] there), not where they differ.")
            if differ > k / 2 and torch.equal(y_new.to(torch.int64), -y_ref):
                fail(label, "-y_ref alone is the output of -w_ref; add the correction 2 * w_new[i] * u[:, i] on "
                            "the positions where w_new and w_ref agree.")
            fail(label, f"y_new differs from u @ w_new when {differ} of {k} bits differ. Use y_ref + sum over the "
                        "differing positions of (w_new - w_ref) * u, or, if more than half differ, -y_ref + sum over "
                        "the agreeing positions of 2 * w_new * u.")
        ops = as_number(ops, label, "ops")
        best = min(differ, k - differ)
        if ops != best:
            if ops == differ:
                fail(label, f"ops is {differ}, the differing bits: when more than half the bits differ, start from "
                            f"-y_ref and correct only the {k - differ} agreeing ones, so ops = min(d, K - d).")
            fail(label, f"ops should be min(d, K - d) = {best} for d = {differ} differing bits of K = {k}, got {ops:g}")
    return passed(label, "your reuse is exact and never needs more than K/2 XNORs per window (identical, opposite, "
                         "half-different and random kernels)")


# --- exercise 2: what the abstract's two power numbers say about the on-chip share ------------------------------


_POWER_CASES = ((0.17, 0.54), (0.10, 0.50), (0.06, 0.30), (0.2, 0.8))


@self_check
def check_2(onchip_share) -> str:
    """Check ``onchip_share(total_reduction, onchip_reduction)`` = total / on-chip reduction."""
    label = _label(2)
    expect(callable(onchip_share), label, "pass your function itself, e.g. check_2(onchip_share)")
    for total, onchip in _POWER_CASES:
        got = as_number(onchip_share(total, onchip), label, f"onchip_share({total}, {onchip})")
        want = total / onchip
        if abs(got - want) <= 1e-6 + 1e-4 * want:
            continue
        if abs(got - 100 * want) <= 1e-3 * 100 * want:
            fail(label, "return a fraction (0.31), not a percentage (31).")
        if abs(got - onchip / total) <= 1e-3 * onchip / total:
            fail(label, "you divided the wrong way: the total falls by s * r, so s = total_reduction / "
                        "onchip_reduction.")
        if abs(got - (1 - want)) <= 1e-4:
            fail(label, "that is the off-chip share 1 - s; the question asks for the on-chip share s.")
        fail(label, f"onchip_share({total}, {onchip}) is {got:.4g}; if only the on-chip part (a share s of the "
                    "total) falls by r, the total falls by s * r.")
    return passed(label, f"with the abstract's numbers the on-chip part was about "
                         f"{100 * 0.17 / 0.54:.0f} % of the baseline's total power")
