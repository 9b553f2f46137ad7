"""The self-checks of the similarity-reuse chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import similarity_reuse_fpga as ex

# --- exercise 1 ---------------------------------------------------------------------------------------------


def complement_reuse(y_ref, w_ref, w_new, u):
    differ = w_new != w_ref
    d, k = int(differ.sum()), len(w_ref)
    if d <= k - d:
        return y_ref + u[:, differ] @ (w_new - w_ref)[differ], d
    agree = ~differ
    return -y_ref + u[:, agree] @ (2 * w_new[agree]), k - d


def complement_reuse_loop(y_ref, w_ref, w_new, u):
    """Another correct answer: explicit loops, ops as a 0-d tensor, integer arithmetic throughout."""
    k = w_ref.numel()
    d = torch.tensor(sum(int(a != b) for a, b in zip(w_ref.tolist(), w_new.tolist())))
    flip = bool(d > k - d)
    y = -y_ref.clone() if flip else y_ref.clone()
    for i in range(k):
        if (w_new[i] == w_ref[i]) == flip:
            y = y + ((w_new[i] - (-w_ref[i] if flip else w_ref[i])) * u[:, i]).long()
    return y, torch.minimum(d, k - d)


def no_complement(y_ref, w_ref, w_new, u):
    differ = w_new != w_ref
    return y_ref + u[:, differ] @ (w_new - w_ref)[differ], int(differ.sum())


def complement_wrong_positions(y_ref, w_ref, w_new, u):
    differ = w_new != w_ref
    d, k = int(differ.sum()), len(w_ref)
    if d <= k - d:
        return y_ref + u[:, differ] @ (w_new - w_ref)[differ], d
    return -y_ref + u @ (w_new - w_ref), k - d


def complement_no_correction(y_ref, w_ref, w_new, u):
    differ = w_new != w_ref
    d, k = int(differ.sum()), len(w_ref)
    if d <= k - d:
        return y_ref + u[:, differ] @ (w_new - w_ref)[differ], d
    return -y_ref, k - d


def wrong_ops(y_ref, w_ref, w_new, u):
    y, _ = complement_reuse(y_ref, w_ref, w_new, u)
    return y, len(w_ref)


@pytest.mark.parametrize("answer", [complement_reuse, complement_reuse_loop])
def test_check_1_passes(answer, capsys):
    ex.check_1(answer)
    assert "✅ ex-similarity_reuse_fpga-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (no_complement, "min(d, K - d)"),
    (complement_wrong_positions, "AGREE"),
    (complement_no_correction, "-y_ref alone"),
    (wrong_ops, "ops should be min(d, K - d)"),
    (lambda y, a, b, u: y, "return a pair"),
    (lambda y, a, b, u: ((u @ b).long(), 0), "ops should be"),
])
def test_check_1_fails_with_hint(answer, hint):
    with pytest.raises(AssertionError, match="ex-similarity_reuse_fpga-1") as info:
        ex.check_1(answer)
    assert hint in str(info.value)


def test_check_1_stub_is_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")

    ex.check_1(stub)
    assert "not attempted yet" in capsys.readouterr().out


# --- exercise 2 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [lambda t, o: t / o, lambda t, o: torch.tensor(t) / torch.tensor(o)])
def test_check_2_passes(answer, capsys):
    ex.check_2(answer)
    assert "✅ ex-similarity_reuse_fpga-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (lambda t, o: 100 * t / o, "fraction"),
    (lambda t, o: o / t, "wrong way"),
    (lambda t, o: 1 - t / o, "off-chip share"),
    (lambda t, o: t * o, "falls by s * r"),
    (lambda t, o: "0.31", "should be a number"),
])
def test_check_2_fails_with_hint(answer, hint):
    with pytest.raises(AssertionError, match="ex-similarity_reuse_fpga-2") as info:
        ex.check_2(answer)
    assert hint in str(info.value)
