"""The RBNN chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import rotated_bnn as ex
from qteach.papers import rotated_bnn as rb


def angle_solution(w):
    return torch.arccos(w.abs().sum(1) / (math.sqrt(w.shape[1]) * w.norm(dim=1)))


def angle_with_sign(w):  # another correct answer: the definition with a +-1 sign vector
    b = sign(w)
    return torch.arccos(((w * b).sum(1) / (w.norm(dim=1) * b.norm(dim=1))).clamp(-1, 1))


def rotation_solution(w, b):
    u, _, vh = torch.linalg.svd(w.t() @ b)
    return u @ vh


def rotation_via_svd_of_transpose(w, b):  # another correct answer: SVD of B^T W = V S U^T
    u, _, vh = torch.linalg.svd(b.t() @ w)
    return vh.t() @ u.t()


@pytest.mark.parametrize("answer", [angle_solution, angle_with_sign, rb.angular_bias])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-rotated_bnn-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda w: torch.rad2deg(angle_solution(w)), "degrees"),
    (lambda w: w.abs().sum(1) / (math.sqrt(w.shape[1]) * w.norm(dim=1)), "cos(theta)"),
    (lambda w: torch.arccos(w.abs().sum(1) / w.norm(dim=1)), "NaN"),
    (lambda w: torch.arccos(((w * torch.sign(w)).sum(1) / (w.norm(dim=1) * torch.sign(w).norm(dim=1))).clamp(-1, 1)),
     "torch.sign(0)"),
    (lambda w: angle_solution(w).mean().reshape(1), "one angle per row"),
    (lambda w: torch.arccos(w.abs().sum(1) / (w.shape[1] * w.norm(dim=1))), "sqrt(n)"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-rotated_bnn-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


@pytest.mark.parametrize("answer", [rotation_solution, rotation_via_svd_of_transpose])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-rotated_bnn-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda w, b: rotation_solution(w, b).t(), "transposed"),
    (lambda w, b: torch.linalg.svd(w.t() @ b)[0] @ torch.diag(torch.linalg.svd(w.t() @ b)[1])
     @ torch.linalg.svd(w.t() @ b)[2], "not orthogonal"),
    (lambda w, b: torch.eye(6, dtype=w.dtype), "best rotation reaches"),
    (lambda w, b: torch.eye(5), "(6, 6)"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-rotated_bnn-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
