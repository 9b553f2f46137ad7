"""Self-checks of the chapter "BDPE: RRAM product engine" (VLSI-SoC 2019).

Each check calls the student's function on several inputs, compares with a reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import rram_product_engine as rp

_SLUG = "rram_product_engine"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: a store that also serves the complement of each pattern ---------------------------------------

def symmetric_hits_reference(counts: torch.Tensor, entries: int) -> int:
    """Kernels served by the best ``entries`` pattern pairs {p, complement of p}."""
    top = counts.numel() - 1
    codes = torch.arange(counts.numel())
    paired = torch.zeros_like(counts).index_add_(0, torch.minimum(codes, top - codes), counts)
    return int(torch.sort(paired, descending=True).values[:entries].sum())


def _histograms():
    g = torch.Generator().manual_seed(0)
    cases = [torch.tensor([3, 0, 0, 1, 2, 0, 0, 5]), torch.tensor([4, 4]), torch.tensor([0, 7, 7, 0])]
    for taps, kernels in ((9, 200), (9, 6144), (4, 50)):
        codes = torch.randint(0, 2**taps, (kernels,), generator=g)
        codes[: kernels // 4] = codes[: kernels // 4] % 5        # a few patterns used often
        cases.append(torch.bincount(codes, minlength=2**taps))
    return cases


def _double_counted(counts, entries):
    both = counts + counts.flip(0)
    return int(torch.sort(both, descending=True).values[:entries].sum())


@self_check
def check_1(symmetric_hits) -> str:
    """Check ``symmetric_hits(counts, entries)``: hits of a store whose entries also serve their complements."""
    label = _label(1)
    expect(callable(symmetric_hits), label, "pass your function itself, e.g. check_1(symmetric_hits)")
    cases = _histograms()
    for counts in cases:
        for entries in sorted({0, 1, 2, 3, counts.numel() // 4, counts.numel() // 2} & set(range(counts.numel() // 2 + 1))):
            got = as_number(symmetric_hits(counts.clone(), entries), label, f"symmetric_hits(counts, {entries})")
            ref = symmetric_hits_reference(counts, entries)
            if got == ref:
                continue
            hint = ("pair every code p with its complement (2**T - 1) - p, add the two counts once per pair, and "
                    "take the `entries` largest pair totals.")
            if got == int(rp.hit_counts(counts)[entries]):
                hint = ("that is the plain store: a stored pattern should also serve the kernels with the complement "
                        "code (the engine negates the result), so add the complement's count to each pattern's.")
            elif got == _double_counted(counts, entries):
                hint = ("each pair is counted twice (once from p, once from its complement), so the top entries "
                        "repeat the same pair: keep one entry per pair, e.g. the smaller code of the two.")
            fail(label, f"symmetric_hits(counts, {entries}) = {got:g}, expected {ref} for a histogram of "
                        f"{counts.numel()} codes. {hint}")
    return passed(label, f"your symmetric store serves the right number of kernels on {len(cases)} histograms")


# --- exercise 2: what the abstract's +11.3% asks of the convolutions -------------------------------------------

_CASES_2 = [(0.113, 0.9), (0.074, 0.9), (0.113, 1.0), (0.5, 0.8), (0.0, 0.9), (1.0, 0.75)]


def required_saving_reference(gain: float, share: float) -> float:
    """The fraction s of the convolutions' time to save for a whole-network gain G: 1/(1 - f s) = 1 + G."""
    return (1 - 1 / (1 + gain)) / share


@self_check
def check_2(required_saving) -> str:
    """Check ``required_saving(gain, share)`` = (1 - 1/(1 + gain)) / share."""
    label = _label(2)
    expect(callable(required_saving), label, "pass your function itself, e.g. check_2(required_saving)")
    for gain, share in _CASES_2:
        got = as_number(required_saving(gain, share), label, f"required_saving({gain}, {share})")
        ref = required_saving_reference(gain, share)
        if abs(got - ref) <= 1e-6 + 1e-6 * abs(ref):
            continue
        hint = "solve 1 / (1 - share * s) = 1 + gain for s."
        if abs(got - gain / share) < 1e-9:
            hint = ("gain / share is the linear approximation; the time shrinks to 1 / (1 + gain), so the saving is "
                    "1 - 1 / (1 + gain) of the whole time, of which the convolutions are a share.")
        elif abs(got - (1 - 1 / (1 + gain))) < 1e-9:
            hint = "that is the saving of the whole time; only the convolutions' share is sped up: divide by share."
        elif abs(got - gain) < 1e-9:
            hint = "a gain of G in speed is not a saving of G in time: time shrinks to 1 / (1 + G)."
        fail(label, f"required_saving({gain}, {share}) = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, f"your inversion of Amdahl's law is right on {len(_CASES_2)} cases")
