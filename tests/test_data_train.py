"""Tests of qteach.data (offline data sets) and qteach.train (the seeded training loop)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from qteach import data, train
from qteach import nn as qnn


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny models train fastest on one thread (worker threads only spin, especially on a busy machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

# ------------------------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_split():
    return data.digits()


def test_digits_shapes_and_dtypes(digits_split):
    s = digits_split
    assert s.x_train.shape == (1347, 1, 8, 8) and s.x_test.shape == (450, 1, 8, 8)
    assert s.y_train.shape == (1347,) and s.y_test.shape == (450,)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.input_shape == (1, 8, 8) and s.num_classes == 10


def test_digits_flatten_shape():
    s = data.digits(flatten=True)
    assert s.x_train.shape == (1347, 64) and s.x_test.shape == (450, 64)
    assert s.input_shape == (64,)


def test_digits_flatten_is_the_same_images(digits_split):
    flat = data.digits(flatten=True)
    assert torch.equal(flat.x_train, digits_split.x_train.reshape(-1, 64))
    assert torch.equal(flat.y_train, digits_split.y_train)


def test_digits_value_range(digits_split):
    x = torch.cat([digits_split.x_train, digits_split.x_test])
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # pixels were 0..16 integers: every value is a multiple of 1/16
    assert torch.equal(x * 16, torch.round(x * 16))


def test_digits_split_is_stratified(digits_split):
    from sklearn.datasets import load_digits

    totals = np.bincount(load_digits().target, minlength=10)
    test_counts = np.bincount(digits_split.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.25 * totals) <= 1)
    train_counts = np.bincount(digits_split.y_train.numpy(), minlength=10)
    np.testing.assert_array_equal(train_counts + test_counts, totals)


@pytest.mark.parametrize("test_fraction, n_train, n_test", [(0.25, 1347, 450), (0.5, 898, 899), (0.1, 1617, 180)])
def test_digits_split_sizes(test_fraction, n_train, n_test):
    s = data.digits(test_fraction=test_fraction)
    assert (len(s.x_train), len(s.x_test)) == (n_train, n_test)


def test_digits_same_seed_same_split(digits_split):
    again = data.digits(seed=0)
    assert torch.equal(again.x_train, digits_split.x_train) and torch.equal(again.y_test, digits_split.y_test)


def test_digits_other_seed_other_split(digits_split):
    other = data.digits(seed=1)
    assert not torch.equal(other.x_train, digits_split.x_train)


# ------------------------------------------------------------------------------------------------- blobs


def test_blobs_shapes_and_classes():
    s = data.blobs(num_samples=400, num_features=5, num_classes=3)
    assert s.x_train.shape == (300, 5) and s.x_test.shape == (100, 5)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.num_classes == 3
    assert set(torch.cat([s.y_train, s.y_test]).tolist()) == {0, 1, 2}


def test_blobs_deterministic_per_seed():
    a, b, c = data.blobs(seed=3), data.blobs(seed=3), data.blobs(seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_blobs_spread_controls_within_class_scatter():
    def within_std(spread):
        s = data.blobs(num_samples=4000, num_features=4, num_classes=2, spread=spread)
        x, y = s.x_train, s.y_train
        return float(torch.cat([x[y == k] - x[y == k].mean(0) for k in (0, 1)]).std())

    assert within_std(0.5) == pytest.approx(0.5, rel=0.05)
    assert within_std(2.0) == pytest.approx(2.0, rel=0.05)


# ---------------------------------------------------------------------------------------- weight_samples

N = 200_000


def excess_kurtosis(x: torch.Tensor) -> float:
    x = x.double()
    centred = x - x.mean()
    return float((centred ** 4).mean() / (centred ** 2).mean() ** 2 - 3)


@pytest.mark.parametrize("distribution, std_per_scale, kurtosis", [
    ("gaussian", 1.0, 0.0),
    ("laplace", 2 ** 0.5, 3.0),    # Laplace(0, b): variance 2 b^2
    ("uniform", 3 ** -0.5, -1.2),  # U(-a, a): variance a^2 / 3
])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_weight_samples_moments(distribution, std_per_scale, kurtosis, scale):
    w = data.weight_samples(N, distribution, scale=scale)
    assert w.shape == (N,) and w.dtype == torch.float32
    assert abs(float(w.mean())) < 0.02 * scale
    assert float(w.std()) == pytest.approx(std_per_scale * scale, rel=0.02)
    assert excess_kurtosis(w) == pytest.approx(kurtosis, abs=0.15)


def test_weight_samples_laplace_mean_abs_is_scale():
    w = data.weight_samples(N, "laplace", scale=0.3)
    assert float(w.abs().mean()) == pytest.approx(0.3, rel=0.02)


def test_weight_samples_uniform_bounds():
    w = data.weight_samples(N, "uniform", scale=0.7)
    assert float(w.min()) >= -0.7 and float(w.max()) <= 0.7
    assert float(w.min()) < -0.69 and float(w.max()) > 0.69


def test_weight_samples_shape_and_seed():
    a = data.weight_samples((3, 4, 5), seed=1)
    assert a.shape == (3, 4, 5)
    assert torch.equal(a, data.weight_samples((3, 4, 5), seed=1))
    assert not torch.equal(a, data.weight_samples((3, 4, 5), seed=2))


# ----------------------------------------------------------------------------------------------- mnist1d


def test_mnist1d_shapes():
    pytest.importorskip("mnist1d")
    s = data.mnist1d(num_samples=200)
    assert s.input_shape == (1, 40)
    assert len(s.x_train) + len(s.x_test) == 200 and len(s.x_test) == 40
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.num_classes == 10


def test_mnist1d_deterministic():
    pytest.importorskip("mnist1d")
    a, b = data.mnist1d(num_samples=100, seed=2), data.mnist1d(num_samples=100, seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


# ------------------------------------------------------------------------------------------------- Split


def test_split_to_device_and_repr():
    s = data.blobs(num_samples=40, num_features=3, num_classes=2)
    moved = s.to("cpu")
    assert isinstance(moved, data.Split) and torch.equal(moved.x_train, s.x_train)
    assert repr(s) == "Split(train=(30, 3), test=(10, 3), classes=2)"


# ------------------------------------------------------------------------------------------ data bad input


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(test_fraction=0.0), ValueError, "test_fraction"),
    (dict(test_fraction=1.0), ValueError, "test_fraction"),
    (dict(test_fraction=1.5), ValueError, "test_fraction"),
    (dict(test_fraction=True), TypeError, "test_fraction"),
    (dict(test_fraction="0.2"), TypeError, "test_fraction"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(flatten="yes"), TypeError, "flatten"),
])
def test_digits_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        data.digits(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(num_samples=2), ValueError, "num_samples"),
    (dict(num_features=0), ValueError, "num_features"),
    (dict(num_classes=1), ValueError, "num_classes"),
    (dict(spread=0.0), ValueError, "spread"),
    (dict(spread=-1.0), ValueError, "spread"),
    (dict(test_fraction=0.0), ValueError, "test_fraction"),
    (dict(seed=-2), ValueError, "seed"),
    (dict(spread=float("nan")), ValueError, "spread"),
    (dict(num_samples=8, num_classes=4), ValueError, "test_fraction"),        # 2 test samples for 4 classes
    (dict(num_samples=4, num_classes=2, test_fraction=0.9), ValueError, "test_fraction"),
])
def test_blobs_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        data.blobs(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(distribution="normal"), ValueError, "distribution"),
    (dict(distribution="Gaussian"), ValueError, "distribution"),
    (dict(scale=0.0), ValueError, "scale"),
    (dict(scale=-1.0), ValueError, "scale"),
    (dict(seed=-1), ValueError, "seed"),
])
def test_weight_samples_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        data.weight_samples(10, **kwargs)


@pytest.mark.parametrize("shape", [0, -3, (3, -1), (2, 0), 2.5, (2.0, 3), "10", None, (True,)])
def test_weight_samples_bad_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        data.weight_samples(shape)


def small_split():
    return data.blobs(num_samples=40, num_features=3, num_classes=2)


@pytest.mark.parametrize("field, value, error, name", [
    ("x_train", lambda s: s.x_train.tolist(), TypeError, "x_train"),
    ("x_train", lambda s: s.x_train.to(torch.int64), TypeError, "x_train"),
    ("y_test", lambda s: s.y_test.float(), TypeError, "y_test"),
    ("y_train", lambda s: s.y_train[:-1], ValueError, "y_train"),                 # one label short
    ("y_train", lambda s: s.y_train[:, None], ValueError, "y_train"),             # not 1-D
    ("x_train", lambda s: s.x_train[:, :2], ValueError, "x_train and x_test"),    # other sample shape
    ("y_test", lambda s: s.y_test - 1, ValueError, "y_test"),                     # negative labels
    ("x_test", lambda s: s.x_test.index_fill(1, torch.tensor([0]), float("nan")), ValueError, "x_test"),
    ("x_train", lambda s: s.x_train.index_fill(0, torch.tensor([3]), float("inf")), ValueError, "x_train"),
])
def test_split_bad_input(field, value, error, name):
    s = small_split()
    fields = dict(x_train=s.x_train, y_train=s.y_train, x_test=s.x_test, y_test=s.y_test)
    fields[field] = value(s)
    with pytest.raises(error, match=name):
        data.Split(**fields)


def test_split_rejects_empty_parts():
    s = small_split()
    with pytest.raises(ValueError, match="x_test and y_test"):
        data.Split(s.x_train, s.y_train, s.x_test[:0], s.y_test[:0])


@pytest.mark.parametrize("device, error", [("gpu", ValueError), (1.5, TypeError), (None, TypeError)])
def test_split_to_bad_device(device, error):
    with pytest.raises(error, match="device"):
        small_split().to(device)


# ------------------------------------------------------------------------------------------------- train


def mlp(num_features=16, num_classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(num_features, 32), nn.ReLU(), nn.Linear(32, num_classes))


@pytest.fixture(scope="module")
def blobs_split():
    return data.blobs()


def test_fit_learns_blobs(blobs_split):
    history = train.fit(mlp(), blobs_split, epochs=3, progress=False)
    assert history.final_test_accuracy > 0.9
    assert len(history.train_loss) == len(history.train_accuracy) == len(history.test_accuracy) == 3
    assert history.train_loss[-1] < history.train_loss[0]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_is_deterministic(blobs_split, optimizer):
    first = train.fit(mlp(), blobs_split, epochs=2, optimizer=optimizer, progress=False, seed=7)
    second = train.fit(mlp(), blobs_split, epochs=2, optimizer=optimizer, progress=False, seed=7)
    assert first == second


def test_fit_with_an_optimizer_factory(blobs_split):
    # a callable params -> Optimizer: the same SGD as optimizer="sgd" gives the same history, step for step
    built = []

    def sgd(params):
        built.append(torch.optim.SGD(params, lr=0.05, momentum=0.9))
        return built[-1]

    model = mlp()
    ours = train.fit(model, blobs_split, epochs=2, optimizer=sgd, progress=False, seed=3)
    assert train.fit(mlp(), blobs_split, epochs=2, lr=0.05, optimizer="sgd", progress=False, seed=3) == ours
    assert len(built) == 1
    assert [p for group in built[0].param_groups for p in group["params"]] == list(model.parameters())


def test_fit_seed_changes_batch_order(blobs_split):
    first = train.fit(mlp(), blobs_split, epochs=1, progress=False, seed=1)
    second = train.fit(mlp(), blobs_split, epochs=1, progress=False, seed=2)
    assert first.train_loss != second.train_loss


def test_fit_weight_clip_clamps_only_quantized_layers(blobs_split):
    torch.manual_seed(0)
    quantized = qnn.QuantLinear(16, 32, weight_quantizer=qnn.SignQuantizer(clip=None))
    plain = nn.Linear(32, 4)
    with torch.no_grad():
        quantized.weight.uniform_(-3, 3)
        plain.weight.uniform_(-3, 3)
    model = nn.Sequential(quantized, nn.ReLU(), plain)
    train.fit(model, blobs_split, epochs=1, weight_clip=0.5, progress=False)
    assert float(quantized.weight.detach().abs().max()) <= 0.5
    assert float(plain.weight.detach().abs().max()) > 0.5


def test_clip_latent_weights():
    layer = qnn.QuantLinear(3, 2, weight_quantizer=qnn.SignQuantizer())
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-2.0, 0.3, 1.5], [0.9, -0.95, 4.0]]))
    train.clip_latent_weights(nn.Sequential(layer), limit=1.0)
    assert torch.equal(layer.weight.detach(), torch.tensor([[-1.0, 0.3, 1.0], [0.9, -0.95, 1.0]]))


def test_fit_calls_after_step_once_per_batch(blobs_split):
    calls = []
    train.fit(mlp(), blobs_split, epochs=1, batch_size=100, after_step=lambda m: calls.append(m), progress=False)
    assert len(calls) == 8  # 750 training samples in batches of 100
    assert all(isinstance(m, nn.Module) for m in calls)


def fixed_classifier():
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    return nn.Sequential(layer, nn.Dropout(0.9))  # dropout shows whether eval mode was used


def test_evaluate_hand_computed():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1, 0])
    assert train.evaluate(fixed_classifier().train(), x, y, batch_size=2) == pytest.approx(0.8)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_restores_mode(training):
    model = fixed_classifier().train(training)
    train.evaluate(model, torch.eye(2), torch.tensor([0, 1]))
    assert all(m.training == training for m in model.modules())


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError)])
def test_evaluate_bad_batch_size(batch_size, error):
    with pytest.raises(error, match="batch_size"):
        train.evaluate(fixed_classifier(), torch.eye(2), torch.tensor([0, 1]), batch_size=batch_size)


def test_accuracy_hand_computed():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert train.accuracy(logits, torch.tensor([1, 1, 1])) == pytest.approx(2 / 3)


def test_accuracy_bad_shapes():
    with pytest.raises(ValueError, match="logits"):
        train.accuracy(torch.zeros(3, 2), torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize("logits, labels, error, name", [
    ([[1.0, 0.0]], torch.tensor([0]), TypeError, "logits"),
    (torch.zeros(1, 2), [0], TypeError, "labels"),
    (torch.zeros(2, 2), torch.tensor([0.0, 1.0]), TypeError, "labels"),
    (torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), ValueError, "empty"),
    (torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]), ValueError, "logits"),
    (torch.zeros(2, 3), torch.tensor([0, 3]), ValueError, "labels"),
    (torch.zeros(2, 3), torch.tensor([-1, 0]), ValueError, "labels"),
])
def test_accuracy_bad_input(logits, labels, error, name):
    with pytest.raises(error, match=name):
        train.accuracy(logits, labels)


@pytest.mark.parametrize("model, x, y, error, name", [
    ("model", torch.zeros(2, 16), torch.tensor([0, 1]), TypeError, "model"),
    (None, torch.tensor([[float("nan")] * 16]), torch.tensor([0]), ValueError, r"\bx\b"),
    (None, torch.zeros(3, 16), torch.tensor([0, 1]), ValueError, r"\by\b"),
    (None, torch.zeros(0, 16), torch.zeros(0, dtype=torch.int64), ValueError, "empty"),
    (None, torch.zeros(2, 16), torch.tensor([0.0, 1.0]), TypeError, r"\by\b"),
])
def test_evaluate_bad_input(model, x, y, error, name):
    with pytest.raises(error, match=name):
        train.evaluate(mlp() if model is None else model, x, y)


@pytest.mark.parametrize("limit, error", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                          (float("inf"), ValueError), ("1", TypeError)])
def test_clip_latent_weights_bad_limit(limit, error):
    with pytest.raises(error, match="limit"):
        train.clip_latent_weights(mlp(), limit)


def test_clip_latent_weights_model_not_a_module():
    with pytest.raises(TypeError, match="model"):
        train.clip_latent_weights("model")


# -------------------------------------------------------------------------------------- train bad input


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(epochs=0), ValueError, "epochs"),
    (dict(epochs=1.0), TypeError, "epochs"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(lr=-0.1), ValueError, "lr"),
    (dict(lr=float("nan")), ValueError, "lr"),
    (dict(lr="0.01"), TypeError, "lr"),
    (dict(optimizer="foo"), ValueError, "optimizer"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(weight_clip=0.0), ValueError, "weight_clip"),
    (dict(weight_clip=float("nan")), ValueError, "weight_clip"),
    (dict(after_step="print"), TypeError, "after_step"),
    (dict(loss_fn="cross_entropy"), TypeError, "loss_fn"),
    (dict(progress="no"), TypeError, "progress"),
])
def test_fit_bad_input(blobs_split, kwargs, error, name):
    with pytest.raises(error, match=name):
        train.fit(mlp(), blobs_split, progress=False, **kwargs)


@pytest.mark.parametrize("optimizer", [42, None, torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1),
                                       lambda params: "adam"])
def test_fit_optimizer_neither_a_name_nor_a_factory(blobs_split, optimizer):
    with pytest.raises(TypeError, match="optimizer"):
        train.fit(mlp(), blobs_split, progress=False, optimizer=optimizer)


@pytest.mark.parametrize("bad_data", [None, (torch.zeros(4, 16), torch.zeros(4, dtype=torch.int64)), "blobs"])
def test_fit_data_not_a_split(bad_data):
    with pytest.raises(TypeError, match="data"):
        train.fit(mlp(), bad_data, progress=False)


@pytest.mark.parametrize("field, name", [("x_train", "data.x_train"), ("x_test", "data.x_test")])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_fit_rejects_non_finite_data_before_training(field, name, value):
    split = data.blobs(num_samples=40)
    getattr(split, field)[3, 1] = value   # changed in place after the split was built
    model = mlp()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=name):
        train.fit(model, split, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_fit_model_not_a_module(blobs_split):
    with pytest.raises(TypeError, match="model"):
        train.fit("model", blobs_split, progress=False)


def test_mnist1d_is_cached_and_the_cache_equals_a_fresh_generation(tmp_path, monkeypatch):
    monkeypatch.setenv("QTEACH_CACHE", str(tmp_path))
    first = data.mnist1d(num_samples=100, seed=3)
    (cached,) = tmp_path.glob("mnist1d-*-100-3.npz")
    second = data.mnist1d(num_samples=100, seed=3)
    x, y = data._generate_mnist1d(100, 3)
    for split in (first, second):
        assert torch.equal(torch.cat([split.x_train, split.x_test]).sort(0).values,
                           torch.as_tensor(x).sort(0).values)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)
    cached.write_bytes(b"not a numpy file")  # a broken cache is generated again
    assert torch.equal(data.mnist1d(num_samples=100, seed=3).x_test, first.x_test)


def test_mnist1d_works_without_a_writable_cache(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("QTEACH_CACHE", str(blocked / "cache"))  # a folder below a file cannot be created
    assert len(data.mnist1d(num_samples=100, seed=0).x_train) == 80


@pytest.mark.parametrize("make", [lambda: data.digits(flatten=True), lambda: data.digits(test_fraction=0.3, seed=2),
                                  lambda: data.blobs(seed=4), lambda: data.mnist1d(num_samples=200, seed=1)])
def test_splits_are_scikit_learns_train_test_split_and_the_cached_ones_too(tmp_path, monkeypatch, make):
    from sklearn.model_selection import train_test_split

    monkeypatch.setenv("QTEACH_CACHE", str(tmp_path))
    fresh = make()
    assert list(tmp_path.glob("split-sklearn-*.npz"))
    cached = make()
    x, y = torch.cat([fresh.x_train, fresh.x_test]), torch.cat([fresh.y_train, fresh.y_test])
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))  # another row order: another split
    x, y = x[order].numpy(), y[order].numpy()
    for split in (fresh, cached):
        again = data._split(x, y, 0.25, 0)
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        assert np.array_equal(again.x_train.numpy(), x_tr) and np.array_equal(again.y_test.numpy(), y_te)
        assert np.array_equal(again.x_test.numpy(), x_te) and np.array_equal(again.y_train.numpy(), y_tr)
    for a, b in zip((fresh.x_train, fresh.y_train, fresh.x_test, fresh.y_test),
                    (cached.x_train, cached.y_train, cached.x_test, cached.y_test)):
        assert torch.equal(a, b)


def test_digits_split_is_scikit_learns(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    monkeypatch.setenv("QTEACH_CACHE", str(tmp_path))
    bunch = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(bunch.images.astype(np.float32) / 16.0, bunch.target, test_size=0.25,
                                              random_state=0, stratify=bunch.target)
    for _ in range(2):  # generated, then read back from the cache
        split = data.digits()
        assert np.array_equal(split.x_train.numpy()[:, 0], x_tr) and np.array_equal(split.y_train.numpy(), y_tr)
        assert np.array_equal(split.x_test.numpy()[:, 0], x_te) and np.array_equal(split.y_test.numpy(), y_te)


def test_minibatches_cover_every_row_once_in_the_generators_order():
    batches = train.minibatches(10, 4, torch.Generator().manual_seed(3))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches), torch.randperm(10, generator=torch.Generator().manual_seed(3)))


def test_fit_loss_with_cross_entropy_trains_exactly_as_fit(blobs_split):
    a = mlp()
    b = copy.deepcopy(a)
    fitted = train.fit(a, blobs_split, epochs=3, lr=0.01, batch_size=32, seed=5, progress=False)
    looped = train.fit_loss(b, blobs_split, lambda idx, xb, yb: nn.functional.cross_entropy(b(xb), yb), epochs=3,
                            lr=0.01, batch_size=32, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert looped.train_loss == pytest.approx(fitted.train_loss, rel=1e-6)
    assert looped.test_accuracy == fitted.test_accuracy


def test_fit_loss_bad_arguments(blobs_split):
    model = mlp()
    with pytest.raises(TypeError, match="batch_loss"):
        train.fit_loss(model, blobs_split, "cross-entropy")
    with pytest.raises(ValueError, match="epochs"):
        train.fit_loss(model, blobs_split, lambda idx, xb, yb: model(xb).sum(), epochs=0)
    with pytest.raises(TypeError, match="data"):
        train.fit_loss(model, (blobs_split.x_train, blobs_split.y_train), lambda idx, xb, yb: model(xb).sum())
