"""Offline data sets, sized for a laptop CPU. Nothing here downloads.

- :func:`digits`: scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside the scikit-learn wheel).
- :func:`mnist1d`: MNIST-1D (Greydanus, *Scaling down Deep Learning*, 2020), generated locally from its
  procedural recipe with the ``mnist1d`` package (``make_dataset``, never ``get_dataset``, which downloads).
- :func:`blobs`: Gaussian clusters in any dimension, for quick synthetic experiments.
- :func:`weight_samples`: Gaussian, Laplace or uniform samples, the usual stand-ins for trained weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from qteach._validate import require_bool, require_int, require_labelled_data, require_positive_number, require_shape


@dataclass(frozen=True)
class Split:
    """A train/test split of tensors: ``x`` float32, ``y`` int64 class labels.

    Each ``x`` is a non-empty floating-point tensor (N, ...) of finite values with its (N,) integer labels ``y``
    >= 0, and train and test samples have one shape; anything else raises ``TypeError``/``ValueError``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __post_init__(self):
        require_labelled_data(self.x_train, self.y_train, "x_train", "y_train")
        require_labelled_data(self.x_test, self.y_test, "x_test", "y_test")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"x_train and x_test must hold samples of one shape, got {tuple(self.x_train.shape)} "
                             f"and {tuple(self.x_test.shape)}")

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def to(self, device) -> "Split":
        """The same split on another device (a ``torch.device``, a name like ``"cuda"`` or a CUDA index)."""
        if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
            raise TypeError(f"device must be a torch.device, a str or an int, got {type(device).__name__}")
        try:
            device = torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"device {device!r} is not a device name: {error}") from error
        return Split(*(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)))

    def __repr__(self) -> str:
        return (f"Split(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={self.num_classes})")


def _check_test_fraction(test_fraction) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(f"test_fraction must be a float, got {type(test_fraction).__name__}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return float(test_fraction)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> Split:
    """A stratified, seeded split (scikit-learn's ``train_test_split``)."""
    train_index, test_index = _cached(_split_name(y, test_fraction, seed),
                                      lambda: _stratified_split_indices(y, test_fraction, seed))
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return Split(as_x(x[train_index]), as_y(y[train_index]), as_x(x[test_index]), as_y(y[test_index]))


def _split_name(y: np.ndarray, test_fraction: float, seed: int) -> str:
    """The cache name of a split: everything its indices depend on (the labels, the fraction, the seed and
    scikit-learn's version); reading the indices back spares the import of scikit-learn (about a second)."""
    labels = np.ascontiguousarray(y)
    digest = hashlib.sha256(str(labels.dtype).encode() + labels.tobytes()).hexdigest()[:16]
    return f"split-sklearn-{version('scikit-learn')}-{digest}-{test_fraction!r}-{seed}"


def _stratified_split_indices(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The train and test indices ``train_test_split`` draws: it picks its split from the labels and the number
    of samples only, so splitting ``arange(len(y))`` picks the rows it would pick of any ``x``."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y)
    except ValueError as error:  # too few samples to put every class on both sides
        raise ValueError(f"test_fraction {test_fraction} cannot split {len(y)} samples of {len(np.unique(y))} "
                         f"classes with every class in both parts: {error}") from error


def digits(test_fraction: float = 0.25, seed: int = 0, flatten: bool = False) -> Split:
    """scikit-learn's handwritten digits: 1,797 grey images of 8x8 pixels, 10 classes.

    Pixels are scaled from 0..16 to [0, 1]. Images have shape ``(1, 8, 8)``, or ``(64,)`` with
    ``flatten=True``. The split is stratified and seeded. Bad arguments raise ``TypeError``/``ValueError``.
    """
    test_fraction = _check_test_fraction(test_fraction)
    seed = require_int(seed, "seed", minimum=0)
    flatten = require_bool(flatten, "flatten")
    images, target = _cached(f"digits-sklearn-{version('scikit-learn')}", _load_digits)
    x = images.astype(np.float32) / 16.0
    x = x.reshape(len(x), -1) if flatten else x[:, None, :, :]
    return _split(x, target, test_fraction, seed)


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def mnist1d(num_samples: int = 5000, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """MNIST-1D: 40-sample 1-D signals of the ten digits, generated locally (no download).

    Uses the procedural generator of the ``mnist1d`` package with its default arguments, except
    ``num_samples`` and ``seed``. Signals have shape ``(1, 40)`` (one channel) for 1-D convolutions.
    """
    num_samples = require_int(num_samples, "num_samples", minimum=20)
    test_fraction = _check_test_fraction(test_fraction)
    seed = require_int(seed, "seed", minimum=0)
    x, y = _cached(f"mnist1d-{version('mnist1d')}-{num_samples}-{seed}", lambda: _generate_mnist1d(num_samples, seed))
    return _split(x, y, test_fraction, seed)


def _generate_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    data = make_dataset(args)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)[:, None, :]
    return x, np.concatenate([data["y"], data["y_test"]])


def cache_folder() -> Path:
    """Where generated data sets are kept between runs: ``$QTEACH_CACHE``, else ``~/.cache/qteach``."""
    return Path(os.environ.get("QTEACH_CACHE") or Path.home() / ".cache" / "qteach")


def _cached(name: str, generate) -> tuple[np.ndarray, np.ndarray]:
    """``generate()`` (two arrays ``x, y``), kept in :func:`cache_folder` under ``name`` (which must say
    everything the arrays depend on, the generator's version included): generating MNIST-1D takes seconds,
    importing scikit-learn for the digits or a split about one, reading them back milliseconds. A cache that
    cannot be read or written is ignored."""
    path = cache_folder() / f"{name}.npz"
    try:
        with np.load(path) as stored:
            return stored["x"], stored["y"]
    except (OSError, KeyError, ValueError):
        pass
    x, y = generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.npz")
        np.savez(partial, x=x, y=y)
        partial.replace(path)  # atomic: a reader never sees half a file
    except OSError:
        pass
    return x, y


def blobs(num_samples: int = 1000, num_features: int = 16, num_classes: int = 4, spread: float = 1.0,
          test_fraction: float = 0.25, seed: int = 0) -> Split:
    """Gaussian clusters: class centres drawn from N(0, 1), samples from N(centre, spread^2).

    Bad arguments raise ``TypeError``/``ValueError``, so do too few samples to put every class in both parts.
    """
    num_samples = require_int(num_samples, "num_samples", minimum=2 * 2)
    num_features = require_int(num_features, "num_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    require_positive_number(spread, "spread")
    rng = np.random.default_rng(require_int(seed, "seed", minimum=0))
    centres = rng.normal(size=(num_classes, num_features))
    y = np.arange(num_samples) % num_classes
    x = centres[y] + spread * rng.normal(size=(num_samples, num_features))
    return _split(x, y, _check_test_fraction(test_fraction), seed)


def weight_samples(shape, distribution: str = "gaussian", scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Samples that stand in for trained weights: ``"gaussian"`` N(0, scale^2), ``"laplace"`` Laplace(0, scale),
    or ``"uniform"`` U(-scale, scale). Returns a float32 tensor of ``shape`` (an int or a tuple of positive
    ints). Bad arguments raise ``TypeError``/``ValueError``."""
    shape = require_shape((shape,) if isinstance(shape, int) else shape, "shape")
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    require_positive_number(scale, "scale")
    if distribution == "gaussian":
        return scale * torch.randn(shape, generator=generator)
    if distribution == "uniform":
        return scale * (2 * torch.rand(shape, generator=generator) - 1)
    if distribution == "laplace":
        u = torch.rand(shape, generator=generator) - 0.5
        return -scale * torch.sign(u) * torch.log1p(-2 * u.abs())
    raise ValueError(f"distribution must be 'gaussian', 'laplace' or 'uniform', got {distribution!r}")
