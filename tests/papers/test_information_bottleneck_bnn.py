"""Tests of qteach.papers.information_bottleneck_bnn: entropies counted by hand, the identities of the
information plane, the data-processing inequality of binary layers, nested bins, and bad input.

The paper (arXiv 2006.07522) has no official code; the definitions tested are the standard ones (module doc)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from qteach import data
from qteach.papers import information_bottleneck_bnn as ib


def test_entropy_by_hand():
    assert ib.entropy_bits(torch.tensor([1, 1])) == pytest.approx(1.0)
    assert ib.entropy_bits(torch.tensor([2, 1, 1])) == pytest.approx(1.5)  # p = 1/2, 1/4, 1/4
    assert ib.entropy_bits(torch.tensor([5, 0, 0])) == 0.0
    assert ib.entropy_bits(torch.tensor([3, 0, 1])) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_discrete_information_hand_example():
    # four samples, two binary units: codes (+,+), (+,+), (+,-), (-,-); labels 0, 0, 1, 1
    t = torch.tensor([[1., 1.], [1., 1.], [1., -1.], [-1., -1.]])
    y = torch.tensor([0, 0, 1, 1])
    ixt, ity = ib.discrete_information(t, y)
    assert ixt == pytest.approx(1.5)          # H(T): p = 1/2, 1/4, 1/4
    assert ity == pytest.approx(1.0)          # T determines Y: I(T;Y) = H(Y) = 1 bit
    ixt, ity = ib.discrete_information(t, torch.tensor([0, 1, 0, 1]))
    assert ity == pytest.approx(0.5)          # H(T) + H(Y) - H(T,Y) = 1.5 + 1 - 2


def test_identities_on_random_codes():
    g = torch.Generator().manual_seed(0)
    for width in (1, 3, 12):
        t = torch.randint(0, 2, (500, width), generator=g).float() * 2 - 1
        y = torch.randint(0, 5, (500,), generator=g)
        ixt, ity = ib.discrete_information(t, y)
        h_y = ib.entropy_bits(torch.bincount(y))
        assert 0 <= ity <= min(ixt, h_y) + 1e-9
        assert ixt <= min(width, math.log2(500)) + 1e-9
        # I(T;Y) = H(Y) - H(Y|T), H(Y|T) counted code by code
        ids = ib.code_ids(t)
        h_y_t = sum((ids == c).double().mean().item() * ib.entropy_bits(torch.bincount(y[ids == c]))
                    for c in ids.unique())
        assert ity == pytest.approx(h_y - h_y_t, abs=1e-9)


def test_constant_layer_and_distinct_codes():
    y = torch.tensor([0, 1, 2, 3])
    assert ib.discrete_information(torch.ones(4, 3), y) == (0.0, 0.0)
    ixt, ity = ib.discrete_information(torch.eye(4), y)
    assert ixt == pytest.approx(2.0) and ity == pytest.approx(2.0)


def test_binary_layers_obey_data_processing():
    d = data.digits(flatten=True)
    torch.manual_seed(0)
    model = ib.ib_mlp("binary")
    layers = ib.hidden_layers(model, d.x_train)
    assert [t.shape[1] for t in layers] == [32, 16, 10]
    assert all(bool(((t == 1) | (t == -1)).all()) for t in layers)
    info = [ib.discrete_information(t, d.y_train) for t in layers]
    for (a, b) in itertools.pairwise(info):
        assert b[0] <= a[0] + 1e-9 and b[1] <= a[1] + 1e-9


def test_bins_nested_and_saturating():
    g = torch.Generator().manual_seed(1)
    t = torch.tanh(torch.randn(300, 4, generator=g) * 2)
    y = torch.randint(0, 3, (300,), generator=g)
    values = [ib.binned_information(t, y, bins)[0] for bins in (1, 2, 4, 8, 16, 64, 4096)]
    assert values[0] == 0.0
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))  # nested partitions: never decreases
    assert values[-1] == pytest.approx(math.log2(300))
    # 2 bins over [-1, 1] split at 0: the same code as the sign
    assert torch.equal(ib.bin_activations(t, 2) * 2 - 1, torch.where(t >= 0, 1, -1))


def test_bin_edges():
    t = torch.tensor([[-1.0, -0.51, 0.0, 0.49, 1.0, 2.0, -3.0]])
    assert ib.bin_activations(t, 4).tolist() == [[0, 0, 2, 2, 3, 3, 0]]


def test_record_and_phases():
    d = data.digits(flatten=True)
    torch.manual_seed(0)
    history, snaps = ib.record_training(ib.ib_mlp("binary", widths=(64, 8)), d, epochs=2, seed=0, weight_clip=1.0)
    assert len(snaps) == 3 and len(history.test_accuracy) == 2
    tr = ib.information_trajectory(snaps, d.y_train)
    assert tr.shape == (3, 1, 2)
    assert ib.phases(torch.tensor([[1., 0.], [3., 1.], [2., 2.], [2., 2.]]), tail=2) == (1, 2)


def test_models():
    assert isinstance(ib.ib_mlp("float")[2], torch.nn.Tanh)
    out = ib.ib_mlp("binary", widths=(5, 3), num_classes=4)(torch.randn(7, 5))
    assert out.shape == (7, 4)


@pytest.mark.parametrize("call,error,name", [
    (lambda: ib.entropy_bits([1, 2]), TypeError, "counts"),
    (lambda: ib.entropy_bits(torch.tensor([0, 0])), ValueError, "counts"),
    (lambda: ib.discrete_information(torch.ones(3), torch.zeros(3, dtype=torch.long)), ValueError, "t"),
    (lambda: ib.discrete_information(torch.ones(3, 2), torch.zeros(4, dtype=torch.long)), ValueError, "y"),
    (lambda: ib.discrete_information(torch.ones(3, 2), torch.zeros(3)), TypeError, "y"),
    (lambda: ib.discrete_information(torch.full((2, 2), float("nan")), torch.zeros(2, dtype=torch.long)),
     ValueError, "t"),
    (lambda: ib.bin_activations(torch.ones(2, 2), 0), ValueError, "bins"),
    (lambda: ib.bin_activations(torch.ones(2, 2), 4, 1.0, -1.0), ValueError, "low"),
    (lambda: ib.ib_mlp("ternary"), ValueError, "kind"),
    (lambda: ib.ib_mlp("float", widths=(64,)), ValueError, "widths"),
    (lambda: ib.hidden_layers("model", torch.ones(2, 2)), TypeError, "model"),
    (lambda: ib.record_training(ib.ib_mlp("float"), "data", 1), TypeError, "data"),
    (lambda: ib.information_trajectory([], torch.zeros(2, dtype=torch.long)), ValueError, "snapshots"),
    (lambda: ib.phases(torch.ones(3, 3)), ValueError, "layer_trajectory"),
    (lambda: ib.phases(torch.ones(3, 2), level=0), ValueError, "level"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()


@pytest.mark.parametrize("width", [1, 3, 20, 40])
def test_code_ids_equal_torch_unique(width):
    g = torch.Generator().manual_seed(width)
    for t in (torch.randint(0, 2, (400, width), generator=g).float() * 2 - 1,
              torch.randint(-5, 300, (400, width), generator=g)):   # 40 columns of 305 values: renumbering
        assert torch.equal(ib.code_ids(t), torch.unique(t, dim=0, return_inverse=True)[1])
