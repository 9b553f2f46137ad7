"""Tests of qteach.papers.finn_r: hand-computed folds, bit-exactness of the folded MVTU, and transcriptions of the
official code (Xilinx/finn commit 39f0c9a, Xilinx/finn-hlslib commit cc8db47, Xilinx/BNN-PYNQ commit d39c1c7)."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import bitops
from qteach.papers import finn_r as fr


def signs(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, shape, generator=g) * 2 - 1).float()


def official_mvau_loop(x_bits, w_bits, thresholds, pe, simd):
    """Line-by-line transcription of ``Matrix_Vector_Activate_Batch`` (finn-hlslib mvau.hpp:102-175) for one
    input vector, with ``XnorMul`` (interpret.hpp:66-69: 1 if the bits are equal) and ``ThresholdsActivation``
    (activations.hpp:213-220, comp::less: result += T < accu), in plain Python."""
    mh, mw = len(w_bits), len(x_bits)
    nf_total, sf_total = mh // pe, mw // simd                      # :102, :106
    out = [0] * mh
    accu = [0] * pe
    nf = sf = 0                                                     # :116-117
    for _ in range(nf_total * sf_total):                            # :122-123
        if sf == 0:                                                 # :138
            accu = [0] * pe                                         # :143 activation.init = 0
        for p in range(pe):                                         # :150
            row = w_bits[nf * pe + p]                               # weights of PE p at fold nf
            for s in range(simd):                                   # mac<SIMD>
                col = sf * simd + s
                accu[p] += 1 if row[col] == x_bits[col] else 0      # XnorMul
        sf += 1
        if sf == sf_total:                                          # :161
            for p in range(pe):                                     # :164
                out[nf * pe + p] = sum(1 for t in thresholds[nf * pe + p] if t < accu[p])   # :168
            sf = 0                                                  # :173
            nf += 1
            if nf == nf_total:                                      # :174
                nf = 0
    return out


def official_lut_estimation(P, Q, MW, W, A):
    """Transcription of ``lut_estimation`` (finn hls/matrixvectoractivation_hls.py:58-119) for
    mem_mode internal_decoupled with block RAM, resType lut, thresholds not in LUTs, accumulator INT32, unsigned
    input."""
    c0, c1, c2 = 300, 1.1, 0                                        # :76-78
    mult_luts = Q * (2 * math.ceil((W + A) / 6) - 1) * (W + A)      # :91
    addertree_luts = (W + A) * (2 * Q - 1)                          # :93
    alpha = math.log(MW, 2) + W + A - 1 - 0                         # :100  # noqa: FURB163
    acc_bits = min(32, math.ceil(alpha + math.log(1 + pow(2, -alpha), 2) + 1))   # :101-104  # noqa: FURB163
    return int(c0 + c1 * (P * (mult_luts + addertree_luts + acc_bits + 0 + 0)) + c2)   # :117-119


def test_mvau_cycles_hand_computed():
    assert fr.mvau_cycles(64, 27, 16, 3, pixels=900) == 4 * 9 * 900
    assert fr.mvau_cycles(512, 256, 1, 4) == 512 * 64
    assert fr.mvau_cycles(8, 8, 8, 8) == 1


def test_cnv_design_point_matches_bnn_pynq_config():
    # BNN-PYNQ bnn/src/network/cnvW1A1/hw/config.h: "Ext Latency" and "#Ops" of each layer
    latency = [32400, 28224, 20736, 28800, 20736, 18432, 32768, 32768, 8192]
    ops = [3110400, 57802752, 21233664, 29491200, 5308416, 1179648, 262144, 524288, 65536]
    got = [fr.mvau_cycles(lay.mh, lay.mw, p, s, lay.pixels) for lay, p, s in fr.CNV_W1A1_PYNQ]
    assert got == latency
    assert [lay.ops for lay, _, _ in fr.CNV_W1A1_PYNQ] == ops
    rate = fr.pipeline_rate(got, fr.CNV_PYNQ_CLOCK_HZ)
    assert rate["ii"] == 32768 and rate["bottleneck"] == 6
    assert rate["fps"] == pytest.approx(1e8 / 32768)
    assert rate["latency_cycles"] == sum(latency)


@pytest.mark.parametrize("n, h, w, pe, simd", [(3, 6, 12, 3, 4), (1, 1, 1, 1, 1), (4, 8, 20, 8, 20),
                                                (2, 12, 9, 1, 9), (5, 10, 35, 5, 7), (1, 64, 512, 4, 1)])
def test_folded_mvtu_bit_exact(n, h, w, pe, simd):
    x, wt = signs(n, w, seed=1), signs(h, w, seed=2)
    g = torch.Generator().manual_seed(3)
    th = torch.randint(0, w + 1, (h, 3), generator=g)
    y, acc, cycles = fr.folded_mvtu(x, wt, th, pe, simd)
    y2, acc2 = fr.plain_mvtu(x, wt, th)
    assert torch.equal(y, y2) and torch.equal(acc, acc2)
    assert cycles == fr.mvau_cycles(h, w, pe, simd)
    # accumulators are popcounts of agreements: (W + dot) / 2
    assert torch.equal(2 * acc - w, bitops.xnor_matmul(x, wt).to(torch.int64))
    # against the transcribed HLS loop
    xb, wb = (x > 0).int().tolist(), (wt > 0).int().tolist()
    for i in range(n):
        assert official_mvau_loop(xb[i], wb, th.tolist(), pe, simd) == y[i].tolist()


def test_folded_mvtu_hand_example():
    x = torch.tensor([[1, -1, 1, 1]])
    w = torch.tensor([[1, -1, 1, 1], [-1, 1, -1, -1]])
    th = torch.tensor([[1, 3], [0, 2]])
    y, acc, cycles = fr.folded_mvtu(x, w, th, pe=1, simd=2)
    assert acc.tolist() == [[4, 0]]            # all agree / none agree
    assert y.tolist() == [[2, 0]]              # 1 < 4, 3 < 4 ; 0 < 0 is false
    assert cycles == 4


def test_folding_does_not_change_result():
    x, w = signs(4, 24, seed=5), signs(12, 24, seed=6)
    th = torch.randint(0, 25, (12, 1), generator=torch.Generator().manual_seed(7))
    results = [fr.folded_mvtu(x, w, th, p, s)[0] for p in fr.divisors(12) for s in fr.divisors(24)]
    assert all(torch.equal(r, results[0]) for r in results)


@pytest.mark.parametrize("P, Q, MW, W, A", [(16, 3, 27, 1, 8), (32, 32, 576, 1, 1), (1, 1, 1, 1, 1),
                                            (4, 16, 512, 2, 2), (8, 8, 64, 4, 4), (2, 6, 1152, 8, 8)])
def test_mvau_luts_match_official_transcription(P, Q, MW, W, A):
    layer = fr.Layer("l", 64, MW, 1, W, A)
    if MW % Q:
        pytest.skip("not a legal fold")
    assert fr.mvau_luts(layer, P, Q) == official_lut_estimation(P, Q, MW, W, A)


def test_mvau_luts_hand_computed():
    # W = A = 1, S = 1, MW = 1: mult 1*(2*1-1)*2 = 2, adder tree 2*1 = 2, alpha = 1, acc ceil(1 + log2(1.5) + 1) = 3
    assert fr.mvau_luts(fr.Layer("l", 1, 1), 1, 1) == int(300 + 1.1 * 7)


def test_mvau_brams_hand_computed():
    # fc6 of CNV: 512 x 256 bits, P = 1, S = 4: width 4, depth 32768 -> ceil(32768/4096) * 1 = 8
    assert fr.mvau_brams(fr.Layer("fc6", 512, 256), 1, 4) == 8
    # width 1: depth 16384 per RAMB18
    assert fr.mvau_brams(fr.Layer("a", 16384, 2), 1, 1) == 2
    # width 64, depth 512: ceil(512/512) * ceil(64/36) = 2
    assert fr.mvau_brams(fr.Layer("b", 64, 512), 8, 8) == 2
    # wide and deep: width 36, depth 1024 -> ceil(1024/1024) * ceil(36/18) = 2
    assert fr.mvau_brams(fr.Layer("c", 36, 1024), 36, 1) == 2


def test_set_folding_transcription():
    fc = fr.Layer("fc", 512, 256)
    # target 40000 met by SIMD = 4 (512 * 64 = 32768 < 40000), PE stays 1
    assert fr.set_folding(fc, 40000) == (1, 4)
    # SIMD 64 gives 512 * 4 = 2048 < 3000: target met, kept although 64 bits > 36
    assert fr.set_folding(fc, 3000) == (1, 64)
    # target 2000: SIMD 64 misses (2048) and is too wide, back to 32 (4096 cycles); PE 4 gives 1024 < 2000
    assert fr.set_folding(fc, 2000) == (4, 32)
    # a SIMD that meets the target is kept even when wider than wwidth_max (FINN keeps it)
    assert fr.set_folding(fr.Layer("f", 1, 256), 5) == (1, 64)
    # unreachable target: everything unfolded as far as allowed
    assert fr.set_folding(fc, 1) == (512, 32)


def test_set_folding_meets_reachable_targets():
    for layer, _, _ in fr.CNV_W1A1_PYNQ:
        for target in (100000, 20000, 5000):
            p, s = fr.set_folding(layer, target)
            assert layer.mh % p == 0 and layer.mw % s == 0
            c = fr.mvau_cycles(layer.mh, layer.mw, p, s, layer.pixels)
            best = min(fr.mvau_cycles(layer.mh, layer.mw, pp, ss, layer.pixels) for pp in fr.divisors(layer.mh)
                       for ss in fr.divisors(layer.mw) if ss * layer.w_bits <= 36 or ss == s)
            assert c < target or c == best


def test_fastest_under_budget_respects_budget_and_is_monotone():
    layers = [lay for lay, _, _ in fr.CNV_W1A1_PYNQ]
    previous = 0
    for budget in (5000, 10000, 20000, 40000, 80000):
        best = fr.fastest_under_budget(layers, budget, 1e8)
        assert best["luts"] <= budget
        assert best["fps"] >= previous
        previous = best["fps"]
        assert best["cycles"] == [fr.mvau_cycles(lay.mh, lay.mw, p, s, lay.pixels)
                                  for lay, (p, s) in zip(layers, best["folds"])]
    assert fr.fastest_under_budget(layers, 100, 1e8) is None


def test_pipeline_rate():
    r = fr.pipeline_rate([10, 40, 20], 200.0)
    assert r == {"ii": 40, "bottleneck": 1, "fps": 5.0, "latency_cycles": 70}


def test_divisors():
    assert fr.divisors(12) == (1, 2, 3, 4, 6, 12)
    assert fr.divisors(1) == (1,)


def test_bad_inputs():
    with pytest.raises(ValueError, match="pe"):
        fr.mvau_cycles(10, 8, 3, 1)
    with pytest.raises(ValueError, match="simd"):
        fr.mvau_cycles(10, 8, 1, 3)
    with pytest.raises(ValueError, match="mh"):
        fr.mvau_cycles(0, 8, 1, 1)
    with pytest.raises(TypeError, match="pe"):
        fr.mvau_cycles(8, 8, 1.5, 1)
    x, w = signs(2, 4), signs(3, 4)
    th = torch.zeros(3, 1, dtype=torch.int64)
    with pytest.raises(ValueError, match="x"):
        fr.folded_mvtu(x * 0.5, w, th, 1, 1)
    with pytest.raises(ValueError, match="w"):
        fr.folded_mvtu(x, signs(3, 5), th, 1, 1)
    with pytest.raises(TypeError, match="thresholds"):
        fr.folded_mvtu(x, w, th.float(), 1, 1)
    with pytest.raises(ValueError, match="thresholds"):
        fr.folded_mvtu(x, w, torch.zeros(2, 1, dtype=torch.int64), 1, 1)
    with pytest.raises(ValueError, match="pe"):
        fr.folded_mvtu(x, w, th, 2, 1)
    with pytest.raises(TypeError, match="layer"):
        fr.mvau_luts((64, 27), 1, 1)
    with pytest.raises(ValueError, match="cycles"):
        fr.pipeline_rate([], 1e8)
    with pytest.raises(ValueError, match="clock_hz"):
        fr.pipeline_rate([1], -1.0)
    with pytest.raises(ValueError, match="mh"):
        fr.Layer("bad", 0, 4)
    with pytest.raises(ValueError, match="layers"):
        fr.fastest_under_budget([], 1000, 1e8)
    with pytest.raises(ValueError, match="lut_budget"):
        fr.fastest_under_budget([fr.Layer("l", 4, 4)], 0, 1e8)
