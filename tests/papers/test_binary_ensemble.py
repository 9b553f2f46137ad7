"""Tests of the BENN mechanism: bootstrap, boosting weights, votes, members and the equal-bit cost model.

The official code is https://github.com/XinDongol/BENN-PyTorch (commit e57f017); the transcriptions below cite
its files and lines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qteach import comparison, hw
from qteach import nn as qnn
from qteach.data import Split
from qteach.papers import binary_ensemble as be
from qteach.papers import dorefa_net

# --- transcriptions of the official code ------------------------------------------------------------------------


def official_update_weights_boost_a(pred, target, sample_weights):
    """cifar/SB/boosting/main_boostA_SB_seq.py lines 241-257 (numpy instead of torch, same formulas)."""
    miss = (pred != target).astype(float)[:, None]
    miss2 = np.where(miss[:, 0] == 1, 1.0, -1.0)
    err_m = ((sample_weights.T @ miss) / sample_weights.sum()).item()  # a 1x1 matrix in the original
    alpha_m = 0.5 * np.log((1 - err_m) / float(err_m))
    prior_exp = (alpha_m * miss2)[:, None]  # torch.t of the (1, n) product in the original: (n, 1)
    return sample_weights * np.exp(prior_exp), alpha_m


def official_alpha_boost_d(err_m):
    """cifar/SB/boosting/main_boostD_SB_seq.py, update_weights: 0.1 * (log((1 - err) / err) + log(9))."""
    return 0.1 * (math.log((1 - err_m) / err_m) + math.log(9))


def official_most_common_element(pred_mat, alpha, num_boost, num_classes=10):
    """main_boostA_SB_seq.py lines 318-331: weighted vote, strict '>' keeps the smallest class on ties."""
    out = []
    for row in pred_mat.astype(int):
        best_value, best_pred = -1000, -1
        for j in range(num_classes):
            mask = (row == j).astype(int)
            if np.sum(mask * alpha[:num_boost]) > best_value:
                best_value, best_pred = np.sum(mask * alpha[:num_boost]), j
        out.append(best_pred)
    return np.array(out)


def test_boost_update_matches_official_boost_a():
    rng = np.random.default_rng(0)
    n = 50
    target = rng.integers(0, 10, n)
    pred = np.where(rng.random(n) < 0.3, rng.integers(0, 10, n), target)
    w0 = rng.random((n, 1)) + 0.1
    official_w, official_alpha = official_update_weights_boost_a(pred, target, w0)
    new, alpha, error = be.boost_update(torch.tensor(w0[:, 0]), torch.tensor(pred != target))
    assert alpha == pytest.approx(official_alpha, rel=1e-12)
    assert error == pytest.approx(float((w0[:, 0] * (pred != target)).sum() / w0.sum()), rel=1e-12)
    # the official weights are unnormalised; ours sum to 1 and are proportional to them
    np.testing.assert_allclose(new.numpy(), official_w[:, 0] / official_w.sum(), rtol=1e-12)


def test_boost_alpha_matches_official_boost_d():
    for err in (0.05, 0.3, 0.6, 0.9):
        assert be.boost_alpha(err, num_classes=10, scale=0.1) == pytest.approx(official_alpha_boost_d(err))


def test_hard_vote_matches_official_weighted_vote():
    rng = np.random.default_rng(1)
    preds = rng.integers(0, 10, (40, 5))
    alpha = np.array([0.7, 0.3, 1.2, 0.5, 0.9])
    ours = be.hard_vote(torch.tensor(preds.T), 10, alpha)
    np.testing.assert_array_equal(ours.numpy(), official_most_common_element(preds, alpha, 5))


def test_hard_vote_unweighted_matches_bincount():
    """main_bagging_SB.py lines 267-275: np.bincount(row).argmax()."""
    rng = np.random.default_rng(2)
    preds = rng.integers(0, 4, (60, 4))
    expected = [np.bincount(row).argmax() for row in preds]
    np.testing.assert_array_equal(be.hard_vote(torch.tensor(preds.T), 4).numpy(), expected)


# --- hand-computed values -----------------------------------------------------------------------------------------


def test_boost_alpha_hand_values():
    assert be.boost_alpha(0.25) == pytest.approx(0.5 * math.log(3))
    assert be.boost_alpha(0.5) == pytest.approx(0.0, abs=1e-12)
    assert be.boost_alpha(0.9, num_classes=10, scale=1.0) == pytest.approx(0.0, abs=1e-12)  # random guessing
    assert be.boost_alpha(0.0) == pytest.approx(0.5 * math.log((1 - be.EPS) / be.EPS))  # clamped, finite


def test_boost_update_hand_example():
    # 4 equal weights, one miss: eps = 1/4, alpha = log(3)/2, miss x sqrt(3), hits / sqrt(3) -> 1/2 and 1/6 each
    new, alpha, error = be.boost_update(torch.full((4,), 0.25, dtype=torch.float64),
                                        torch.tensor([True, False, False, False]))
    assert error == 0.25 and alpha == pytest.approx(0.5 * math.log(3))
    torch.testing.assert_close(new, torch.tensor([0.5, 1 / 6, 1 / 6, 1 / 6], dtype=torch.float64))


def test_adaboost_invariant_half_weight_on_misses():
    """After an AdaBoost (s = 1/2, C = 2) update the misclassified examples hold exactly half the weight."""
    g = torch.Generator().manual_seed(3)
    w = torch.rand(100, generator=g, dtype=torch.float64) + 0.01
    miss = torch.rand(100, generator=g) < 0.2
    new, _, _ = be.boost_update(w, miss)
    assert float(new[miss].sum()) == pytest.approx(0.5)
    assert float(new.sum()) == pytest.approx(1.0)


def test_votes_hand_example():
    labels = torch.tensor([[0, 1, 2], [1, 1, 0], [1, 2, 0]])  # 3 members, 3 samples
    assert be.hard_vote(labels, 3).tolist() == [1, 1, 0]
    assert be.hard_vote(labels, 3, [5.0, 1.0, 1.0]).tolist() == [0, 1, 2]
    assert be.hard_vote(torch.tensor([[2], [1]]), 3).tolist() == [1]  # a tie goes to the smallest class
    outputs = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]]])
    torch.testing.assert_close(be.soft_vote(outputs), torch.tensor([[1.0, 3.0]]))
    torch.testing.assert_close(be.soft_vote(outputs, [4.0, 1.0]), torch.tensor([[4.0, 3.0]]))


def test_single_member_votes_are_the_member():
    out = torch.randn(1, 30, 10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(be.soft_vote(out).argmax(1), out[0].argmax(1))
    assert torch.equal(be.hard_vote(out.argmax(2), 10), out[0].argmax(1))


def test_bootstrap_indices():
    idx = be.bootstrap_indices(1000, torch.Generator().manual_seed(0))
    assert idx.shape == (1000,) and idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) < 1000
    assert 0.58 < idx.unique().numel() / 1000 < 0.68  # about 1 - 1/e
    assert torch.equal(idx, be.bootstrap_indices(1000, torch.Generator().manual_seed(0)))


# --- members and costs ----------------------------------------------------------------------------------------------


def test_member_layers():
    bnn = be.member(1, seed=0)
    quantized = [m for m in bnn.modules() if isinstance(m, qnn.QuantLinear)]
    assert len(quantized) == 2 and all(isinstance(m.weight_quantizer, qnn.SignQuantizer) for m in quantized)
    four = be.member(4, seed=0)
    assert all(isinstance(m.weight_quantizer, dorefa_net.WeightQuantizer) and m.weight_quantizer.precision == 4
               for m in four.modules() if isinstance(m, qnn.QuantLinear))
    assert all(m.weight_quantizer is None for m in be.member(32).modules() if isinstance(m, qnn.QuantLinear))
    # the seed fixes the initialisation and does not touch the global generator
    state = torch.random.get_rng_state()
    assert torch.equal(be.member(1, seed=5)[0].weight, be.member(1, seed=5)[0].weight)
    assert torch.equal(state, torch.random.get_rng_state())
    assert be.model_macs(bnn) == (2 * comparison.HIDDEN**2, 64 * comparison.HIDDEN + comparison.HIDDEN * 10)


def test_equal_bit_costs():
    costs = be.equal_bit_costs(4, 1000, 50)
    ens, kbit = costs["4 BNNs (BENN)"], costs["one 4-bit network"]
    assert ens["weight_bits"] == kbit["weight_bits"] == 4000
    assert ens["bit_ops"] == 4000 and kbit["bit_ops"] == hw.bops(1000, 4, 4) == 16000
    assert ens["float_macs"] == 200 and kbit["float_macs"] == 50
    one = be.equal_bit_costs(1, 1000)
    assert one["1 BNNs (BENN)"] == one["one 1-bit network"]


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 8, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return Split(x[:90], y[:90], x[90:], y[90:])


@pytest.mark.parametrize("scheme", ["bagging", "boosting"])
def test_train_ensemble_runs_and_votes(scheme):
    data = _tiny_data()
    models, alphas = be.train_ensemble(data, 3, scheme, seed=0, epochs=2, batch_size=32)
    assert len(models) == len(alphas) == 3
    if scheme == "bagging":
        assert alphas == [1.0, 1.0, 1.0]
    else:
        assert all(math.isfinite(a) for a in alphas)
    for vote in ("soft", "hard"):
        acc = be.ensemble_accuracy(models, alphas, data.x_test, data.y_test, vote)
        assert 0.0 <= acc <= 1.0
    warm, _ = be.train_ensemble(data, 2, scheme, seed=0, warm_start=True, epochs=1, batch_size=32)
    assert len(warm) == 2 and warm[0] is not warm[1]


# --- bad input ------------------------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(ValueError, match="n"):
        be.bootstrap_indices(0)
    with pytest.raises(TypeError, match="generator"):
        be.bootstrap_indices(5, generator=0)
    with pytest.raises(ValueError, match="error"):
        be.boost_alpha(1.5)
    with pytest.raises(ValueError, match="num_classes"):
        be.boost_alpha(0.2, num_classes=1)
    with pytest.raises(ValueError, match="scale"):
        be.boost_alpha(0.2, scale=0)
    with pytest.raises(TypeError, match="miss"):
        be.boost_update(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="miss"):
        be.boost_update(torch.ones(3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="weights"):
        be.boost_update(-torch.ones(3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="weights"):
        be.boost_update(torch.ones(3, dtype=torch.long), torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="labels"):
        be.hard_vote(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match="labels"):
        be.hard_vote(torch.tensor([[0, 3]]), 3)
    with pytest.raises(ValueError, match="alphas"):
        be.hard_vote(torch.tensor([[0, 1]]), 3, [1.0, 2.0])
    with pytest.raises(ValueError, match="outputs"):
        be.soft_vote(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="bits"):
        be.member(16)
    with pytest.raises(TypeError, match="data"):
        be.train_ensemble("data", 2)
    with pytest.raises(ValueError, match="scheme"):
        be.train_ensemble(_tiny_data(), 2, "stacking")
    with pytest.raises(TypeError, match="models"):
        be.member_outputs(be.member(1), torch.zeros(2, 64))
    with pytest.raises(ValueError, match="vote"):
        be.ensemble_accuracy([be.member(1)], [1.0], torch.zeros(2, 64), torch.zeros(2, dtype=torch.long), "x")
    with pytest.raises(ValueError, match="k"):
        be.equal_bit_costs(0, 10)
    with pytest.raises(TypeError, match="model"):
        be.model_macs("net")
