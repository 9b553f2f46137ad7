"""Eyeriss v2 (Chen et al., JETCAS 2019): row-stationary schedule, CSC processing and the NoC model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import hw
from qteach.papers import eyeriss_v2 as ev


def _reference_conv(x, w, stride, padding):
    return F.conv2d(x[None].double(), w.double(), stride=stride, padding=padding)[0].round().long()


def test_pe_row_conv_hand_computed():
    # p[f] = sum_s w[s] x[fU + s]: x = 1..5, w = (1, 0, -1) -> (1-3, 2-4, 3-5) = (-2, -2, -2)
    x = torch.tensor([1, 2, 3, 4, 5])
    assert ev.pe_row_conv(x, torch.tensor([1, 0, -1])).tolist() == [-2, -2, -2]
    assert ev.pe_row_conv(x, torch.tensor([1, 1]), stride=2).tolist() == [3, 7]


@pytest.mark.parametrize("shape", [((3, 9, 10), (4, 3, 3, 2), 1, 0), ((1, 5, 5), (2, 1, 5, 5), 1, 0),
                                   ((2, 7, 6), (3, 2, 3, 3), 2, 1), ((4, 8, 8), (1, 4, 1, 1), 3, 2),
                                   ((1, 1, 1), (1, 1, 1, 1), 1, 0)])
def test_row_stationary_equals_conv2d_bit_exact(shape):
    (xs, ws, stride, padding) = shape
    g = torch.Generator().manual_seed(sum(xs))
    x = torch.randint(-128, 128, xs, generator=g, dtype=torch.int8)
    w = torch.randint(-128, 128, ws, generator=g, dtype=torch.int8)
    out, stats = ev.row_stationary_conv2d(x, w, stride, padding)
    ref = _reference_conv(x, w, stride, padding)
    assert out.dtype == torch.int64 and torch.equal(out, ref)
    M, C, R, S = ws
    E, Fo = ref.shape[1:]
    assert (stats.pe_rows, stats.pe_cols) == (R, E)
    assert stats.row_convs == M * C * E * R
    assert stats.macs == hw.conv2d_macs(C, M, 1, E, Fo) * R * S      # every MAC of the layer, once


def test_rs_array_fit():
    assert ev.rs_array_fit(3, 14, 12, 14) == (1, 42 / 168)
    passes, util = ev.rs_array_fit(13, 15, 12, 14)
    assert passes == 4 and util == pytest.approx(195 / (4 * 168))
    assert ev.rs_array_fit(12, 14, 12, 14) == (1, 1.0)


def test_csc_encode_hand_example_and_round_trip():
    # column [0, 5, 0, 0, 7] -> data (5, 7), counts (1, 2); column [0, 0, 0, 0, 0] -> nothing
    m = torch.tensor([[0, 0], [5, 0], [0, 0], [0, 0], [7, 0]])
    csc = ev.csc_encode(m)
    assert csc.data.tolist() == [5, 7] and csc.count.tolist() == [1, 2] and csc.address.tolist() == [0, 2, 2]
    assert torch.equal(ev.csc_decode(csc), m)
    # a run of 5 zeros with 2-bit counts (cap 3): one padding zero (count 3, covers 4 positions), then (9, 1)
    v = torch.tensor([0, 0, 0, 0, 0, 9])
    csc = ev.csc_encode(v, count_bits=2)
    assert csc.data.tolist() == [0, 9] and csc.count.tolist() == [3, 1]
    assert torch.equal(ev.csc_decode(csc), v)
    g = torch.Generator().manual_seed(1)
    for bits in (1, 2, 4):
        r = torch.randint(-3, 4, (37, 11), generator=g) * (torch.rand(37, 11, generator=g) < 0.2)
        assert torch.equal(ev.csc_decode(ev.csc_encode(r, bits)), r)


def test_csc_storage_bits_formula():
    csc = ev.csc_encode(torch.tensor([[0, 0], [5, 0], [0, 0], [0, 0], [7, 0]]))
    assert ev.csc_storage_bits(csc) == 2 * (8 + 4) + 3 * 16
    assert ev.csc_storage_bits(csc, data_bits=4, address_bits=5) == 2 * 8 + 3 * 5


@pytest.mark.parametrize("seed", range(4))
def test_csc_matvec_equals_dense_with_exact_counts(seed):
    g = torch.Generator().manual_seed(seed)
    M, C = 3 + seed * 7, 5 + seed * 11
    w = torch.randint(-128, 128, (M, C), generator=g) * (torch.rand(M, C, generator=g) < 0.3)
    a = torch.randint(0, 256, (C,), generator=g) * (torch.rand(C, generator=g) < 0.5)   # post-ReLU
    out, counts = ev.csc_matvec(w, a, count_bits=8)        # 8-bit counts: no padding at these sizes
    assert torch.equal(out, w @ a)
    assert counts.macs == int(((w != 0) & (a != 0)[None]).sum())    # only non-zero pairs are multiplied
    assert counts.iact_reads == int((a != 0).sum()) and counts.address_reads == 2 * counts.iact_reads
    assert counts.weight_reads == counts.macs and counts.dense_macs == M * C


def test_csc_matvec_counts_padding_zeros():
    w = torch.ones(2, 6, dtype=torch.int64)
    a = torch.tensor([0, 0, 0, 0, 0, 3])                     # a 5-zero run, 2-bit counts: one padding entry
    out, counts = ev.csc_matvec(w, a, count_bits=2)
    assert out.tolist() == [3, 3]
    assert counts.iact_reads == 2 and counts.macs == 4       # the padding zero meets column 3's two weights


def test_csc_dense_and_empty_extremes():
    w = torch.arange(1, 13).reshape(3, 4)
    out, counts = ev.csc_matvec(w, torch.ones(4, dtype=torch.int64))
    assert torch.equal(out, w.sum(1)) and counts.macs == counts.dense_macs == 12
    out, counts = ev.csc_matvec(w, torch.zeros(4, dtype=torch.int64))
    assert out.tolist() == [0, 0, 0] and counts.macs == 0 and counts.iact_reads == 0


def test_layer_reuse_hand_computed():
    macs, weights, iacts, wr, ir = ev.layer_reuse("conv", 2, 4, 3, 5)
    assert macs == 2 * 4 * 9 * 25 and weights == 72 and iacts == 2 * 49
    assert wr == 25 and ir == macs / 98
    macs, weights, iacts, wr, ir = ev.layer_reuse("depthwise", 8, 8, 3, 4, stride=2)
    assert macs == 8 * 9 * 16 and weights == 72 and iacts == 8 * 81
    assert ev.layer_reuse("conv", 10, 7, 1, 1)[3:] == (1.0, 7.0)          # fully connected: no weight reuse


def test_noc_layer_cost_model():
    # FC 256 -> 256 at batch 1: each weight used once, so a bus delivering 1 value/cycle keeps 1 of P PEs busy
    macs, weights, iacts, _, _ = ev.layer_reuse("conv", 256, 256, 1, 1)
    bus = ev.noc_layer_cost(macs, weights, iacts, "broadcast bus", num_pes=168)
    mesh = ev.noc_layer_cost(macs, weights, iacts, "hierarchical mesh", num_pes=168)
    uni = ev.noc_layer_cost(macs, weights, iacts, "unicast", num_pes=168)
    assert bus["utilization"] == pytest.approx(1 / 168) and bus["cycles"] == pytest.approx(macs)
    assert mesh["utilization"] == 1.0 and mesh["cycles"] == pytest.approx(macs / 168)
    assert mesh["buffer_reads"] == weights + iacts and uni["buffer_reads"] == 2 * macs
    e_mac, e_read = hw.mac_energy_pj("int", 8), 20.0 / 8                  # Horowitz 45 nm, 32 kB SRAM
    assert mesh["energy_pj"] == pytest.approx(macs * e_mac + (weights + iacts) * e_read)
    # a layer with high reuse keeps every network busy
    macs, weights, iacts, _, _ = ev.layer_reuse("conv", 32, 32, 3, 16)
    assert all(ev.noc_layer_cost(macs, weights, iacts, n)["utilization"] == 1.0 for n in ev.NETWORKS)


def test_paper_numbers_from_the_abstract():
    assert ev.PAPER["sparse_mobilenet_inferences_per_s"] == 1470.6
    assert ev.PAPER["sparse_mobilenet_inferences_per_j"] == 2560.3
    assert ev.PAPER["speedup_vs_eyeriss_v1_mobilenet"] == 12.6
    assert ev.PAPER["energy_efficiency_vs_eyeriss_v1_mobilenet"] == 2.5


@pytest.mark.parametrize("call, error, name", [
    (lambda: ev.pe_row_conv(torch.ones(4), torch.ones(2, dtype=torch.int64)), TypeError, "input_row"),
    (lambda: ev.pe_row_conv(torch.ones(2, dtype=torch.int64), torch.ones(3, dtype=torch.int64)), ValueError,
     "filter_row"),
    (lambda: ev.pe_row_conv(torch.ones(4, dtype=torch.int64), torch.ones(2, dtype=torch.int64), 0), ValueError,
     "stride"),
    (lambda: ev.row_stationary_conv2d(torch.ones(1, 3, 3, dtype=torch.int64), torch.ones(1, 2, 1, 1,
                                      dtype=torch.int64)), ValueError, "input channels"),
    (lambda: ev.row_stationary_conv2d(torch.ones(3, 3, dtype=torch.int64), torch.ones(1, 1, 1, 1,
                                      dtype=torch.int64)), ValueError, "x"),
    (lambda: ev.row_stationary_conv2d(torch.ones(1, 2, 2, dtype=torch.int64), torch.ones(1, 1, 3, 3,
                                      dtype=torch.int64)), ValueError, "kernel"),
    (lambda: ev.rs_array_fit(0, 1, 1, 1), ValueError, "pe_rows"),
    (lambda: ev.csc_encode(torch.ones(2, 2)), TypeError, "matrix"),
    (lambda: ev.csc_encode(torch.ones(2, 2, 2, dtype=torch.int64)), ValueError, "matrix"),
    (lambda: ev.csc_encode(torch.ones(2, dtype=torch.int64), count_bits=0), ValueError, "count_bits"),
    (lambda: ev.csc_decode("x"), TypeError, "csc"),
    (lambda: ev.csc_matvec(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, dtype=torch.int64)), ValueError,
     "columns"),
    (lambda: ev.csc_storage_bits(None), TypeError, "csc"),
    (lambda: ev.layer_reuse("fc", 1, 1, 1, 1), ValueError, "kind"),
    (lambda: ev.layer_reuse("depthwise", 2, 3, 1, 1), ValueError, "depthwise"),
    (lambda: ev.noc_layer_cost(10, 1, 1, "ring"), ValueError, "network"),
    (lambda: ev.noc_layer_cost(0, 1, 1, "unicast"), ValueError, "macs"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
