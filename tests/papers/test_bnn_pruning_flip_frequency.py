"""BNN pruning by weight flipping frequency: flip counts, the official rule, ranked masks, bit-exact pruned layers."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from qteach import data
from qteach.papers import bnn_pruning_flip_frequency as bp


def _official_flip_sum(checkpoints):
    """Transcription of PSCLab-ASU/BNNPruning CIFAR_10/main.py, lines 236-240 and 261: for every epoch after the
    first, ``flip_mat = target_modules_last * target_modules``, ``flip_mat = (-1 * flip_mat.sign() + 1) / 2``,
    ``flip_mat_sum = flip_mat_sum + flip_mat``, then ``target_modules_last = deepcopy(target_modules)``."""
    flip_mat_sum = 0
    for last, current in itertools.pairwise(checkpoints):
        flip_mat = last * current
        flip_mat = (-1 * flip_mat.sign() + 1) / 2
        flip_mat_sum = flip_mat_sum + flip_mat
    return flip_mat_sum


def _official_mask(flip_mat_sum, rand):
    """Transcription of CIFAR_10/run.py, lines 218-224 (``rand`` is the ``torch.rand`` draw of line 221):
    ``tp = flip - 0.5``, ``mask_tp = (-tp.sign() + 1) / 2``, ``random = ((rand - 0.5).sign() + 1) / 2``,
    ``random = random * (1 - mask_tp)``, ``mask = mask_tp + random``."""
    tp = flip_mat_sum - 0.5
    mask_tp = (-1 * tp.sign() + 1) / 2
    random_mask = ((rand - 0.5).sign() + 1) / 2
    random_mask = random_mask * (torch.ones(mask_tp.size()) - mask_tp)
    return mask_tp + random_mask


def test_flip_counter_hand_computed():
    w = torch.nn.Parameter(torch.tensor([0.5, -0.2, 0.1]))
    counter = bp.FlipCounter([w])
    for values in ([0.4, 0.3, -0.1], [0.3, -0.1, 0.2], [-0.1, 0.2, 0.3]):
        w.data = torch.tensor(values)
        counter.update()
    assert counter.counts[0].tolist() == [1, 3, 2]
    assert counter.counts[0].dtype == torch.int64 and counter.checkpoints == 3


def test_flip_indicator_zero_is_positive():
    assert bp.flip_indicator(torch.tensor([0.0, 0.0, -1.0]), torch.tensor([1.0, -1.0, 0.0])).tolist() == [0, 1, 1]


def test_flip_count_matches_official_code_for_nonzero_weights():
    g = torch.Generator().manual_seed(0)
    checkpoints = [torch.randn(7, 5, generator=g) for _ in range(9)]
    w = torch.nn.Parameter(checkpoints[0].clone())
    counter = bp.FlipCounter([w])
    for c in checkpoints[1:]:
        w.data = c.clone()
        counter.update()
    assert torch.equal(counter.counts[0].to(torch.float32), _official_flip_sum(checkpoints))


def test_official_keep_mask_matches_run_py():
    g = torch.Generator().manual_seed(3)
    flips = torch.randint(0, 4, (6, 9), generator=g)
    mask = bp.official_keep_mask(flips, torch.Generator().manual_seed(5))
    rand = torch.rand(flips.shape, generator=torch.Generator().manual_seed(5))
    assert torch.equal(mask, _official_mask(flips.to(torch.float32), rand))
    assert bool((mask[flips == 0] == 1).all())


def test_prune_mask_prunes_highest_scores_and_breaks_ties_at_random():
    scores = torch.tensor([3.0, 0.0, 5.0, 1.0, 0.0, 0.0])
    assert bp.prune_mask(scores, 0.5).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    masks = {tuple(bp.prune_mask(scores, 4 / 6, torch.Generator().manual_seed(s)).tolist()) for s in range(20)}
    assert len(masks) == 3 and all(m[:4] == (0.0, 1.0, 0.0, 0.0) or sum(m) == 2 for m in masks)
    assert bp.prune_mask(scores, 0.0).sum() == 6 and bp.prune_mask(scores, 1.0).sum() == 0


def test_pruning_scores_directions():
    w = torch.tensor([[0.1, -2.0, 0.5]])
    flips = torch.tensor([[4, 0, 1]])
    assert bp.prune_mask(bp.pruning_scores("flip", w, flips), 1 / 3).tolist() == [[0.0, 1.0, 1.0]]
    assert bp.prune_mask(bp.pruning_scores("magnitude", w), 2 / 3).tolist() == [[0.0, 1.0, 0.0]]


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 65, 2), (5, 130, 7), (2, 7, 64)])
def test_masked_xnor_matmul_bit_exact(shape):
    m, k, n = shape
    g = torch.Generator().manual_seed(k)
    a, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    mask = (torch.rand(n, k, generator=g) > 0.4).float()
    want = (torch.where(a >= 0, 1.0, -1.0) @ (torch.where(w >= 0, 1.0, -1.0) * mask).T).to(torch.int32)
    assert torch.equal(bp.masked_xnor_matmul(a, w, mask), want)


def test_model_pruning_counts_ops_and_matches_float_layer():
    model = bp.FlipBinaryMLP(16, (8, 12, 6), seed=0)
    assert bp.xnor_popcount_ops(model) == 8 * 12 + 12 * 6
    bp.prune(model, 0.5, "random", seed=1)
    assert bp.xnor_popcount_ops(model) == 48 + 36
    layer = model.binary[0]
    x = torch.where(torch.randn(4, 8) >= 0, 1.0, -1.0)
    out = layer(x) - layer.bias
    assert torch.equal(out.round().to(torch.int32), bp.masked_xnor_matmul(x, layer.weight, layer.mask))


def test_pruned_weights_get_no_gradient():
    layer = bp.MaskedSignLinear(4, 3)
    layer.mask[0, :2] = 0
    layer(torch.randn(5, 4)).sum().backward()
    assert torch.equal(layer.weight.grad[0, :2], torch.zeros(2))


def test_train_counting_flips_small_run():
    split = data.digits(flatten=True)
    model = bp.FlipBinaryMLP(64, (16, 16), seed=0)
    before = copy.deepcopy(model)
    counter = bp.train_counting_flips(model, split, epochs=2, window=1, every="step")
    assert counter.checkpoints == -(-len(split.x_train) // 64)
    assert counter.counts[0].shape == (16, 16) and int(counter.counts[0].max()) <= counter.checkpoints
    assert not torch.equal(before.binary[0].weight, model.binary[0].weight)


def test_bad_inputs():
    with pytest.raises(ValueError, match="previous and current"):
        bp.flip_indicator(torch.zeros(2), torch.zeros(3))
    with pytest.raises(TypeError, match="weights"):
        bp.FlipCounter([])
    with pytest.raises(ValueError, match="flips"):
        bp.official_keep_mask(torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="method"):
        bp.pruning_scores("l2", torch.zeros(2))
    with pytest.raises(ValueError, match="fraction"):
        bp.prune_mask(torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match="a \\(M, K\\)"):
        bp.masked_xnor_matmul(torch.zeros(2, 3), torch.zeros(4, 5), torch.ones(4, 5))
    with pytest.raises(TypeError, match="flips"):
        bp.prune(bp.FlipBinaryMLP(4, (3, 3)), 0.5, "flip")
    with pytest.raises(ValueError, match="every"):
        bp.train_counting_flips(bp.FlipBinaryMLP(64, (3, 3)), data.digits(flatten=True), every="batch")
    with pytest.raises(TypeError, match="model"):
        bp.xnor_popcount_ops(torch.nn.Linear(2, 2))
