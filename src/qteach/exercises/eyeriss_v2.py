"""Self-checks of the chapter "Eyeriss v2" (Chen, Yang, Emer, Sze, JETCAS 2019).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.eyeriss_v2`, and
either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, passed, self_check
from qteach.papers import eyeriss_v2 as ev

_SLUG = "eyeriss_v2"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _cases_1():
    g = torch.Generator().manual_seed(7)
    cases = []           # random layers first: there every plausible mistake gives its own number
    for density_w, density_a in ((0.3, 0.5), (0.6, 0.2), (0.1, 0.9), (0.5, 0.5)):
        w = torch.randint(1, 9, (12, 15), generator=g) * (torch.rand(12, 15, generator=g) < density_w)
        a = torch.randint(1, 9, (15,), generator=g) * (torch.rand(15, generator=g) < density_a)
        cases.append((w, a))
    return cases + [(torch.tensor([[1, 0], [0, 2]]), torch.tensor([3, 0])),
                    (torch.tensor([[0, 0, 4]]), torch.tensor([5, 6, 0])),
                    (torch.ones(3, 4, dtype=torch.int64), torch.ones(4, dtype=torch.int64))]


@self_check
def check_1(csc_macs) -> str:
    """Check ``csc_macs(weight, act)``: the MACs :func:`qteach.papers.eyeriss_v2.csc_matvec` performs."""
    label = _label(1)
    expect(callable(csc_macs), label, "pass your function itself, e.g. check_1(csc_macs)")
    for w, a in _cases_1():
        got = as_number(csc_macs(w.clone(), a.clone()), label, "csc_macs(weight, act)")
        expected = ev.csc_matvec(w, a)[1].macs
        if got == expected:
            continue
        nnz_w, nnz_a = int((w != 0).sum()), int((a != 0).sum())
        if got == w.numel():
            hint = "that is the dense count M x C: the PE never multiplies a zero weight or a zero activation."
        elif got == nnz_w * nnz_a:
            hint = ("a stored activation a[c] meets only the stored weights of its own column c, not every "
                    "non-zero weight.")
        elif got == nnz_w:
            hint = "a weight column whose activation is zero is never read: skip the columns where act[c] == 0."
        elif got == nnz_a * w.shape[0]:
            hint = "within a column, only the stored (non-zero) weights are multiplied, not all M rows."
        else:
            hint = "count, for each non-zero act[c], the non-zero entries of weight[:, c]."
        expect(False, label, f"csc_macs gives {got:g} for a {tuple(w.shape)} layer, expected {expected}: {hint}")
    return passed(label, "the compressed-domain MAC count is the number of (non-zero weight, non-zero "
                         "activation) pairs that meet in a column")


_CASES_2 = [([0, 5, 0, 0, 7], 4), ([0] * 20 + [1], 4), ([0] * 16 + [1], 4), ([0] * 15 + [1], 4),
            ([0, 0, 0, 0, 0, 9], 2), ([0] * 8 + [3] + [0] * 9 + [4] + [0] * 30, 2), ([1, 2, 3], 1),
            ([0, 0, 0], 3), ([0] * 7 + [1] + [0] * 40, 1), ([0] * 33 + [2, 0, 0, 0, 5], 3), ([4], 4)]


@self_check
def check_2(csc_entries) -> str:
    """Check ``csc_entries(column, count_bits)``: entries :func:`~qteach.papers.eyeriss_v2.csc_encode` stores."""
    label = _label(2)
    expect(callable(csc_entries), label, "pass your function itself, e.g. check_2(csc_entries)")
    for column, bits in _CASES_2:
        col = torch.tensor(column, dtype=torch.int64)
        got = as_number(csc_entries(col.clone(), bits), label, "csc_entries(column, count_bits)")
        expected = len(ev.csc_encode(col, bits).data)
        if got == expected:
            continue
        nnz = int((col != 0).sum())
        if got == nnz:
            hint = (f"a count field of {bits} bits holds at most {2**bits - 1}: a longer run of zeros needs "
                    f"padding zeros.")
        elif got > expected and column[-1] == 0:
            hint = "zeros after a column's last non-zero value need no entry: the address vector ends the column."
        elif got > expected:
            hint = (f"a padding zero stored with count {2**bits - 1} stands for {2**bits} positions (the zeros it "
                    f"counts plus itself): divide the run by 2**count_bits, not 2**count_bits - 1.")
        else:
            hint = "count one entry per non-zero value plus the padding zeros of each long run."
        expect(False, label, f"csc_entries({column}, count_bits={bits}) gives {got:g}, expected {expected}: {hint}")
    return passed(label, "entries = non-zeros + (run // 2**count_bits) padding zeros for each run before one")
