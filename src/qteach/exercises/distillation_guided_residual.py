"""Self-checks of the distillation-guided residual chapter (notebooks/2020/distillation_guided_residual.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check

_SLUG = "distillation_guided_residual"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: what the branch costs, in parameters and in bits ---------------------------------------------

_SIZES = ((128, 6), (64, 3), (256, 12), (100, 1))


@self_check
def check_1(branch_overhead) -> str:
    """Check ``branch_overhead(channels, k)`` -> (parameter fraction, storage-bit fraction) of an SI branch
    (2 k C real 32-bit weights) next to one binary C x C layer (C^2 one-bit weights)."""
    label = _label(1)
    expect(callable(branch_overhead), label, "pass your function itself, e.g. check_1(branch_overhead)")
    for c, k in _SIZES:
        got = branch_overhead(c, k)
        expect(isinstance(got, (tuple, list)) and len(got) == 2, label,
               "return two numbers: (parameter fraction, storage-bit fraction)")
        params, bits = as_number(got[0], label, "the parameter fraction"), as_number(got[1], label, "the bit fraction")
        if abs(params - k / c) < 1e-9:
            fail(label, "the parameter fraction counts one of the branch's two matrices: the squeeze (k x C) "
                        "and the interaction (C x k) make 2 k C weights.")
        expect(abs(params - 2 * k / c) < 1e-9, label, f"for C = {c}, k = {k} the branch has 2 k C = {2 * k * c} "
                                                      f"weights next to C^2 = {c * c}: the fraction is 2k/C.")
        if abs(bits - 2 * k / c) < 1e-9:
            fail(label, "the bit fraction equals the parameter fraction: the branch's weights are 32-bit reals, "
                        "the binary layer's 1-bit signs.")
        expect(abs(bits - 64 * k / c) < 1e-9, label, "storage bits: 32 bits per branch weight (2 k C of them) "
                                                     "against 1 bit per binary weight (C^2): 64 k / C.")
    return passed(label, "about 10 % more parameters, but about 3 times the binary layer's storage at k = 6")


# --- exercise 2: a normalized variant of the block-wise distillation term -------------------------------------


def _reference(student, teacher):
    return sum(((torch.nn.functional.normalize(s, dim=1) - torch.nn.functional.normalize(t, dim=1)) ** 2)
               .sum(dim=1).mean() for s, t in zip(student, teacher))


def _features(seed: int):
    g = torch.Generator().manual_seed(seed)
    shapes = ((8, 5), (8, 3))
    student = [torch.randn(*s, generator=g) for s in shapes]
    teacher = [3.0 * torch.randn(*s, generator=g) + 1.0 for s in shapes]
    return student, teacher


@self_check
def check_2(normalized_distillation) -> str:
    """Check ``normalized_distillation(student_features, teacher_features)``: the sum over blocks of the batch
    mean of || s/||s|| - t/||t|| ||^2, each example's feature vector normalized to unit length."""
    label = _label(2)
    expect(callable(normalized_distillation), label,
           "pass your function itself, e.g. check_2(normalized_distillation)")
    for seed in (0, 1, 2):
        student, teacher = _features(seed)
        got = normalized_distillation([s.clone() for s in student], [t.clone() for t in teacher])
        expect_type(got, torch.Tensor, label, "normalized_distillation(...)")
        expect(got.numel() == 1, label, f"return one number (a scalar tensor), got shape {tuple(got.shape)}")
        value, expected = float(got), float(_reference(student, teacher))
        plain = float(sum(((s - t) ** 2).sum(dim=1).mean() for s, t in zip(student, teacher)))
        if abs(value - plain) < 1e-4 * max(1.0, abs(plain)):
            fail(label, "the features are not normalized: divide each example's vector by its L2 norm first "
                        "(torch.nn.functional.normalize(x, dim=1)).")
        whole = float(sum(((s / s.norm() - t / t.norm()) ** 2).sum() for s, t in zip(student, teacher)))
        if abs(value - whole) < 1e-4 * max(1.0, abs(whole)):
            fail(label, "you normalized the whole batch at once: normalize each example (row) on its own, dim=1.")
        if abs(value - expected / len(student)) < 1e-5:
            fail(label, "you averaged over the blocks: the term sums them.")
        expect(abs(value - expected) < 1e-5 * max(1.0, abs(expected)), label,
               "per block: normalize the rows of both features, take the squared distance of each row, average "
               "over the batch; then add the blocks.")
    scaled = normalized_distillation([2.0 * s for s in student], teacher)
    expect(abs(float(scaled) - float(_reference(student, teacher))) < 1e-5, label,
           "scaling the student's features should not change the normalized term")
    return passed(label, "the term ignores the scale of the features and matches their directions")
