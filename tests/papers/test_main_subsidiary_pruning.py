"""Tests of qteach.papers.main_subsidiary_pruning: hand-computed masks and scores, invariants of pruning, the
bit-exact equivalence of a masked binary layer and a physically smaller one, and bad inputs.

No official code was found (the catalog has none); the paper's text beyond its abstract could not be read, so the
mask function and the selection are the module's own reconstruction, tested here for what they claim.
"""

from __future__ import annotations

import copy

import pytest
import torch

from qteach import bitops, data
from qteach.binary import sign
from qteach.papers import main_subsidiary_pruning as ms


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny_data():
    d = data.digits(flatten=True)
    return data.Split(d.x_train[:256], d.y_train[:256], d.x_test[:128], d.y_test[:128])


def test_heaviside_ste_hand_values():
    s = torch.tensor([-1.5, -0.2, 0.0, 0.3, 2.0], requires_grad=True)
    m = ms.heaviside_ste(s)
    assert m.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0 + 1.0]
    m.sum().backward()
    assert s.grad.tolist() == [0.0, 0.5, 0.5, 0.5, 0.0]


def test_l1_scores_of_latent_and_binary_weights():
    w = torch.tensor([[0.5, -1.5, 0.0], [0.1, 0.2, -0.3]])
    assert torch.allclose(ms.l1_filter_scores(w), torch.tensor([2.0, 0.6]))
    # the binary filters all have the same L1 norm: a zero-based rule cannot rank them
    assert ms.l1_filter_scores(sign(randn(7, 13))).tolist() == [13.0] * 7
    assert ms.l1_filter_scores(randn(4, 3, 2, 2)).shape == (4,)


def test_top_k_mask_and_ties():
    assert ms.top_k_mask(torch.tensor([0.3, 2.0, -1.0, 0.5]), 2).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert ms.top_k_mask(torch.tensor([1.0, 1.0, 1.0]), 2).tolist() == [1.0, 1.0, 0.0]
    scores = randn(50)
    mask = ms.top_k_mask(scores, 20)
    assert mask.sum() == 20 and scores[mask == 1].min() >= scores[mask == 0].max()


@pytest.mark.parametrize("filters,fraction,kept", [(96, 0.5, 48), (96, 0.75, 24), (96, 0.875, 12), (10, 0.99, 1),
                                                   (7, 0.0, 7), (5, 0.5, 2)])
def test_keep_count(filters, fraction, kept):
    assert ms.keep_count(filters, fraction) == kept


def test_masked_layer_equals_smaller_layer_bit_exact():
    # pruning filter j of layer i = deleting input j of layer i+1: the XNOR-popcount of the kept inputs
    a, w = sign(randn(16, 40, seed=1)), randn(12, 40, seed=2)
    keep = ms.top_k_mask(randn(40, seed=3), 25)
    masked = (a * keep) @ sign(w).T
    idx = keep.bool()
    smaller = bitops.xnor_matmul(a[:, idx], w[:, idx])
    assert torch.equal(masked.to(torch.int32), smaller)


def test_subsidiary_mask_module():
    mask = ms.SubsidiaryMask(4)
    a = sign(randn(3, 4))
    assert torch.equal(mask(a), a) and mask.scores.requires_grad
    mask.fix(torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert mask(a)[:, 1].abs().sum() == 0 and not mask.scores.requires_grad
    with pytest.raises(ValueError, match="mask"):
        mask.fix(torch.tensor([1.0, 0.5, 1.0, 0.0]))
    with pytest.raises(ValueError, match="mask"):
        mask.fix(torch.ones(3))


def test_network_shapes_and_seed():
    model = ms.MaskedBinaryMLP(64, (32, 16, 8), seed=1)
    assert model(randn(5, 64)).shape == (5, 10) and model.kept_filters() == [32, 16, 8]
    other = ms.MaskedBinaryMLP(64, (32, 16, 8), seed=1)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), other.parameters()))
    assert torch.equal(model.linears[1].quantized_weight().abs(), torch.ones(16, 32))


@pytest.mark.parametrize("method", ms.METHODS)
def test_select_filters_keeps_k_and_freezes_main_network(method, tiny_data):
    model = ms.MaskedBinaryMLP(64, (24, 24), seed=0)
    before = copy.deepcopy(model.state_dict())
    keep = ms.select_filters(model, 0, 6, method, tiny_data, epochs=1, seed=0)
    assert keep.sum() == 6 and model.kept_filters() == [6, 24]
    for name, value in model.state_dict().items():  # the main network's weights did not move
        if name.startswith(("linears", "classifier")):
            assert torch.equal(value, before[name]), name
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("masks."))


def test_select_l1_picks_largest_latent_rows():
    model = ms.MaskedBinaryMLP(64, (8, 8), seed=0)
    keep = ms.select_filters(model, 1, 3, "l1")
    assert torch.equal(keep, ms.top_k_mask(model.linears[1].weight.detach().abs().sum(1), 3))


def test_learned_scores_rank_filters_by_usefulness(tiny_data):
    # keeping the k highest learned scores beats keeping the k lowest ones by a wide margin
    from qteach import train
    model = ms.MaskedBinaryMLP(64, (32,), seed=0)
    train.fit(model, tiny_data, epochs=6, lr=0.01, batch_size=64, seed=0, progress=False)
    reverse = copy.deepcopy(model)
    ms.select_filters(model, 0, 8, "learned", tiny_data, epochs=3, seed=0)
    ms.select_filters(reverse, 0, 8, "learned", tiny_data, epochs=3, seed=0)
    reverse.masks[0].fixed = ms.top_k_mask(-model.masks[0].scores.detach(), 8)
    top = train.evaluate(model, tiny_data.x_test, tiny_data.y_test)
    bottom = train.evaluate(reverse, tiny_data.x_test, tiny_data.y_test)
    assert top > bottom + 0.03


def test_prune_layerwise(tiny_data):
    model = ms.MaskedBinaryMLP(64, (16, 16), seed=0)
    acc = ms.prune_layerwise(model, tiny_data, 0.5, "random", retrain_epochs=1, seed=0)
    assert set(acc) == {"selected", "retrained"} and len(acc["retrained"]) == 2
    assert model.kept_filters() == [8, 8]
    assert all(0 <= a <= 1 for a in acc["selected"] + acc["retrained"])


def test_bad_inputs(tiny_data):
    with pytest.raises(TypeError, match="s"):
        ms.heaviside_ste([0.1])
    with pytest.raises(ValueError, match="weight"):
        ms.l1_filter_scores(torch.ones(3))
    with pytest.raises(ValueError, match="scores"):
        ms.top_k_mask(torch.ones(2, 2), 1)
    with pytest.raises(ValueError, match="k"):
        ms.top_k_mask(torch.ones(3), 4)
    with pytest.raises(ValueError, match="pruned_fraction"):
        ms.keep_count(10, 1.0)
    with pytest.raises(ValueError, match="pruned_fraction"):
        ms.keep_count(10, -0.1)
    with pytest.raises(ValueError, match="init"):
        ms.SubsidiaryMask(3, init=0.0)
    with pytest.raises(TypeError, match="hidden"):
        ms.MaskedBinaryMLP(64, [32])
    with pytest.raises(ValueError, match="hidden"):
        ms.MaskedBinaryMLP(64, (0,))
    model = ms.MaskedBinaryMLP(64, (8, 8))
    with pytest.raises(TypeError, match="model"):
        ms.select_filters("net", 0, 2, "l1")
    with pytest.raises(ValueError, match="layer"):
        ms.select_filters(model, 2, 2, "l1")
    with pytest.raises(ValueError, match="method"):
        ms.select_filters(model, 0, 2, "taylor")
    with pytest.raises(TypeError, match="data"):
        ms.select_filters(model, 0, 2, "learned")
    with pytest.raises(ValueError, match="lam"):
        ms.select_filters(model, 0, 2, "l1", lam=-1.0)
    with pytest.raises(TypeError, match="data"):
        ms.prune_layerwise(model, None, 0.5, "l1")
    with pytest.raises(ValueError, match="retrain_epochs"):
        ms.prune_layerwise(model, tiny_data, 0.5, "l1", retrain_epochs=-1)
