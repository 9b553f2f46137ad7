"""DBRC: the adaptive tanh, Hamming distances by popcount, exact mAP, the CCA baseline and the tag modality."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from qteach.papers import deep_binary_reconstruction as dbrc

# --- ATanh -------------------------------------------------------------------------------------------------------


def test_adaptive_tanh_hand_values_and_gradients():
    z = torch.tensor([0.5, -0.25, 0.0], requires_grad=True)
    alpha = torch.tensor(2.0, requires_grad=True)
    h = dbrc.adaptive_tanh(z, alpha)
    assert torch.allclose(h, torch.tensor([math.tanh(1.0), math.tanh(-0.5), 0.0]))
    h.sum().backward()
    # d/dz = alpha (1 - tanh^2(alpha z)); d/dalpha = sum_i z_i (1 - tanh^2(alpha z_i))
    expected_z = [2 * (1 - math.tanh(1.0) ** 2), 2 * (1 - math.tanh(-0.5) ** 2), 2.0]
    assert torch.allclose(z.grad, torch.tensor(expected_z))
    expected_alpha = 0.5 * (1 - math.tanh(1.0) ** 2) - 0.25 * (1 - math.tanh(-0.5) ** 2)
    assert abs(alpha.grad.item() - expected_alpha) < 1e-6


def test_adaptive_tanh_tends_to_sign():
    z = torch.tensor([-2.0, -0.1, 0.05, 1.0])
    gaps = [(dbrc.adaptive_tanh(z, a) - torch.sign(z)).abs().max().item() for a in (1, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(gaps)) and gaps[-1] < 1e-6


def test_adaptive_tanh_per_bit_alpha_broadcasts():
    z = torch.ones(3, 2)
    out = dbrc.adaptive_tanh(z, torch.tensor([1.0, 3.0]))
    assert torch.allclose(out[:, 1], torch.full((3,), math.tanh(3.0)))


def test_adaptive_tanh_module_alpha_positive_and_frozen():
    layer = dbrc.AdaptiveTanh(4, alpha=2.0)
    assert torch.allclose(layer.alpha, torch.full((4,), 2.0))
    assert torch.allclose(layer(torch.ones(1, 4)), torch.full((1, 4), math.tanh(2.0)))
    frozen = dbrc.AdaptiveTanh(4, learn_alpha=False)
    assert not frozen.log_alpha.requires_grad
    assert torch.allclose(frozen(torch.tensor([[0.3] * 4])), torch.tanh(torch.tensor([[0.3] * 4])))


def test_alpha_penalty_hand_value():
    assert dbrc.alpha_penalty(torch.tensor([1.0, 2.0, 0.5])).item() == pytest.approx(1 + 0.25 + 4)


@pytest.mark.parametrize("call, match", [
    (lambda: dbrc.adaptive_tanh([1.0], 1.0), "z"),
    (lambda: dbrc.adaptive_tanh(torch.ones(2), 0.0), "alpha"),
    (lambda: dbrc.adaptive_tanh(torch.ones(2), torch.tensor([1.0, -1.0])), "alpha"),
    (lambda: dbrc.alpha_penalty(torch.tensor([1.0, 0.0])), "alpha"),
    (lambda: dbrc.AdaptiveTanh(0), "bits"),
])
def test_atanh_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# --- the network and its loss ---------------------------------------------------------------------------------


def test_reconstruction_loss_matches_its_formula():
    torch.manual_seed(0)
    model = dbrc.DBRCNet(5, 3, 4, hidden=8)
    x, y = torch.randn(6, 5), torch.randn(6, 3)
    h_x, h_y = model(x, y)
    by_hand = 0.0
    for h in (h_x, h_y):
        by_hand += ((x - model.dec_x(h)) ** 2).sum() / 6 + ((y - model.dec_y(h)) ** 2).sum() / 6
    by_hand += 0.5 * (dbrc.alpha_penalty(model.act_x.alpha) + dbrc.alpha_penalty(model.act_y.alpha))
    assert torch.allclose(dbrc.reconstruction_loss(model, x, y, 0.5), by_hand)


def test_codes_are_signs_of_the_relaxed_codes():
    torch.manual_seed(1)
    model = dbrc.DBRCNet(5, 3, 7, hidden=8)
    x, y = torch.randn(9, 5), torch.randn(9, 3)
    b_x, b_y = model.codes(x, y)
    h_x, h_y = model(x, y)
    assert set(b_x.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(b_x, torch.where(h_x >= 0, 1.0, -1.0)) and torch.equal(b_y, torch.where(h_y >= 0, 1.0, -1.0))


def test_training_lowers_the_loss_and_grows_alpha():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=g), torch.randn(64, 4, generator=g)
    before = dbrc.reconstruction_loss(dbrc.train_dbrc(x, y, 4, steps=1, seed=0), x, y).item()
    model = dbrc.train_dbrc(x, y, 4, steps=60, seed=0)
    assert dbrc.reconstruction_loss(model, x, y).item() < before
    assert bool((model.act_x.alpha > 1.5).all())
    baseline = dbrc.train_dbrc(x, y, 4, adaptive=False, steps=5, seed=0)
    assert torch.equal(baseline.act_x.alpha, torch.ones(4))


@pytest.mark.parametrize("call, match", [
    (lambda: dbrc.reconstruction_loss(torch.nn.Linear(2, 2), torch.ones(1, 2), torch.ones(1, 2)), "model"),
    (lambda: dbrc.train_dbrc(torch.ones(3, 2), torch.ones(4, 2), 2), "x and y"),
    (lambda: dbrc.train_dbrc(torch.ones(3), torch.ones(3, 2), 2), "x"),
    (lambda: dbrc.train_dbrc(torch.ones(3, 2), torch.ones(3, 2), 2, steps=0), "steps"),
    (lambda: dbrc.DBRCNet(2, 2, 0), "bits"),
])
def test_network_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# --- Hamming distance by popcount ----------------------------------------------------------------------------


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (5, 7, 8), (4, 9, 13), (3, 2, 64), (6, 5, 65), (2, 3, 200)])
def test_hamming_distance_equals_counting_disagreements(m, n, k):
    g = torch.Generator().manual_seed(m * 100 + k)
    q, d = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    q[0, 0] = 0.0  # sign(0) = +1
    bq, bd = torch.where(q >= 0, 1, -1), torch.where(d >= 0, 1, -1)
    by_count = (bq[:, None, :] != bd[None, :, :]).sum(-1)
    out = dbrc.hamming_distance(q, d)
    assert out.dtype == torch.int64 and torch.equal(out, by_count)


def test_hamming_distance_hand_example():
    q = torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    d = torch.tensor([[1.0, -1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, -1.0], [1.0, 1.0, 1.0, -1.0]])
    assert dbrc.hamming_distance(q, d).tolist() == [[0, 4, 2]]


@pytest.mark.parametrize("call, match", [
    (lambda: dbrc.hamming_distance(torch.ones(2, 3), torch.ones(2, 4)), "code length"),
    (lambda: dbrc.hamming_distance(torch.ones(3), torch.ones(2, 3)), "query_codes"),
    (lambda: dbrc.hamming_distance(torch.ones(2, 3), [1.0]), "db_codes"),
])
def test_hamming_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# --- average precision -----------------------------------------------------------------------------------------


def test_average_precision_hand_example():
    # ranking by distance: items 2, 0, 3, 1 -> relevance 1, 0, 1, 0 -> AP = (1/1 + 2/3) / 2
    dist = torch.tensor([[1.0, 3.0, 0.0, 2.0]])
    rel = torch.tensor([[False, False, True, True]])
    assert dbrc.average_precision(dist, rel).item() == pytest.approx((1 + 2 / 3) / 2)


def test_ties_keep_database_order():
    dist = torch.zeros(1, 4, dtype=torch.int64)
    rel = torch.tensor([[False, True, False, True]])
    assert dbrc.average_precision(dist, rel).item() == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_average_precision_equals_sklearn_without_ties():
    from sklearn.metrics import average_precision_score

    g = torch.Generator().manual_seed(3)
    dist = torch.rand(6, 50, generator=g, dtype=torch.float64)
    rel = torch.rand(6, 50, generator=g) < 0.3
    rel[:, 0] = True
    ours = dbrc.average_precision(dist, rel)
    for q in range(6):
        assert ours[q].item() == pytest.approx(average_precision_score(rel[q].numpy(), -dist[q].numpy()))
    assert dbrc.mean_average_precision(dist, rel) == pytest.approx(ours.mean().item())


def test_perfect_and_worst_rankings():
    rel = torch.tensor([[True, True, False, False, False]])
    assert dbrc.average_precision(torch.tensor([[0, 0, 1, 1, 1]]), rel).item() == 1.0
    worst = dbrc.average_precision(torch.tensor([[5, 5, 1, 1, 1]]), rel).item()
    assert worst == pytest.approx((1 / 4 + 2 / 5) / 2)


@pytest.mark.parametrize("call, match", [
    (lambda: dbrc.average_precision(torch.zeros(2, 3), torch.ones(2, 3)), "bool"),
    (lambda: dbrc.average_precision(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool)), "shape"),
    (lambda: dbrc.average_precision(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool)), "relevant"),
    (lambda: dbrc.average_precision(torch.tensor([[float("nan")]]), torch.ones(1, 1, dtype=torch.bool)),
     "distances"),
    (lambda: dbrc.average_precision(torch.zeros(3), torch.ones(3, dtype=torch.bool)), "distances"),
])
def test_average_precision_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# --- CCA baseline and tag modality -----------------------------------------------------------------------------


def test_cca_finds_a_shared_signal():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2000, 2, generator=g)
    x = torch.cat([s, torch.randn(2000, 4, generator=g)], 1) @ torch.randn(6, 6, generator=g)
    y = torch.cat([s, torch.randn(2000, 3, generator=g)], 1) @ torch.randn(5, 5, generator=g)
    b_x, b_y = dbrc.cca_sign_codes(x, y, 2)(x, y)
    assert set(b_x.unique().tolist()) == {-1.0, 1.0}
    assert (b_x == b_y).double().mean().item() > 0.95  # shared directions give the same bits


def test_cca_correlations_match_numpy():
    g = np.random.default_rng(0)
    x = g.normal(size=(500, 4))
    y = x[:, :3] @ g.normal(size=(3, 3)) + 0.5 * g.normal(size=(500, 3))
    encode = dbrc.cca_sign_codes(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), 1,
                                 ridge=1e-9)
    assert encode is not None
    # the first canonical correlation from numpy (whitened cross-covariance) is near 1 here
    xc, yc = x - x.mean(0), y - y.mean(0)
    wx = np.linalg.inv(np.linalg.cholesky(xc.T @ xc / 500)).T
    wy = np.linalg.inv(np.linalg.cholesky(yc.T @ yc / 500)).T
    rho = np.linalg.svd(wx.T @ (xc.T @ yc / 500) @ wy, compute_uv=False)[0]
    assert rho > 0.9


def test_tag_modality_shape_and_determinism():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    a, b = dbrc.tag_modality(labels, vocabulary=10, tags=3, seed=4), dbrc.tag_modality(labels, 10, 3, seed=4)
    assert torch.equal(a, b) and a.shape == (6, 10)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert bool(((a.sum(1) >= 1) & (a.sum(1) <= 3)).all())


def test_tag_modality_is_informative_without_noise():
    labels = torch.arange(3).repeat_interleave(300)
    tags = dbrc.tag_modality(labels, vocabulary=12, tags=5, noise=0.0, seed=0)
    means = torch.stack([tags[labels == c].mean(0) for c in range(3)])
    assert (means[0] - means[1]).abs().max() > 0.3


@pytest.mark.parametrize("call, match", [
    (lambda: dbrc.cca_sign_codes(torch.ones(5, 2), torch.ones(5, 3), 3), "bits"),
    (lambda: dbrc.tag_modality(torch.tensor([0.0, 1.0])), "labels"),
    (lambda: dbrc.tag_modality(torch.tensor([0, 1]), noise=1.5), "noise"),
    (lambda: dbrc.binarization_gap([0.5]), "h"),
])
def test_baseline_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_binarization_gap_hand_value():
    assert dbrc.binarization_gap(torch.tensor([1.0, -0.5, 0.0, -1.0])) == pytest.approx((0 + 0.5 + 1 + 0) / 4)
