"""The Quant-Noise chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import quant_noise as ex


def psi_solution(weight, quantized, mask):
    distorted = torch.where(mask, quantized, weight.detach())
    return weight + (distorted - weight).detach()


def psi_exact(weight, quantized, mask):  # another correct answer: exact values, identity gradient
    return torch.where(mask, quantized, weight.detach()) + (weight - weight.detach())


def bits_solution(m, n, d, k, codebook_bits):
    return m * n // d * (k - 1).bit_length() + k * d * codebook_bits


def bits_log(m, n, d, k, codebook_bits):  # another correct answer, with math.ceil(log2)
    return (m * n / d) * math.ceil(math.log2(k)) + k * d * codebook_bits


@pytest.mark.parametrize("answer", [psi_solution, psi_exact])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-quant_noise-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda w, q, m: torch.where(m, w, q), "swapped"),
    (lambda w, q, m: torch.where(m, q.detach(), w), "no gradient"),
    (lambda w, q, m: torch.where(m, q, w).detach(), "no gradient reaches"),
    (lambda w, q, m: q + 0 * w, "forward value"),
    (lambda w, q, m: w * 2 - w.detach() + (torch.where(m, q, w.detach()) - w).detach(), "unchanged"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-quant_noise-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


@pytest.mark.parametrize("answer", [bits_solution, bits_log])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-quant_noise-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda m, n, d, k, b: m * n // d * (k - 1).bit_length(), "codebook is missing"),
    (lambda m, n, d, k, b: m * n // d * k + k * d * b, "ceil(log2 k)"),
    (lambda m, n, d, k, b: m * n * (k - 1).bit_length() + k * d * b, "one index per block"),
    (lambda m, n, d, k, b: m * n // d * max(1, (k - 1).bit_length()) + k * d * b, "single centroid"),
    (lambda m, n, d, k, b: "many", "number of bits"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-quant_noise-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
