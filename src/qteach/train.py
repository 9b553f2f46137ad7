"""A small, seeded training loop: fit, evaluate, and a history to plot.

Deliberately plain (one loop a student can read top to bottom), with the two hooks the binary-network papers
need: clipping the latent weights after every step (BinaryConnect, BNN; Larq's ``WeightClip``) and an
arbitrary ``after_step`` callback. :func:`fit_loss` is the same loop for a loss that is more than cross-entropy on
the logits (a teacher's, a block's); :func:`minibatches` is the shuffling every training loop of the book uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from qteach._validate import (require_bool, require_int, require_integer_tensor, require_labelled_data,
                               require_module, require_no_nan, require_optional_callable, require_positive_number,
                               require_tensor)
from qteach.data import Split


@dataclass
class History:
    """Per-epoch training loss, training accuracy and test accuracy (fractions in [0, 1])."""

    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)

    @property
    def final_test_accuracy(self) -> float:
        return self.test_accuracy[-1] if self.test_accuracy else float("nan")


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of rows whose arg-max equals the label.

    ``logits`` is (N, C) without NaN, ``labels`` (N,) integers in [0, C), N >= 1; anything else raises
    ``TypeError``/``ValueError``.
    """
    require_tensor(logits, "logits")
    require_integer_tensor(labels, "labels")
    if logits.dim() != 2 or labels.dim() != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits must be (N, C) and labels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("logits and labels must not be empty (the accuracy of no samples is undefined)")
    require_no_nan(logits, "logits")
    if bool(((labels < 0) | (labels >= logits.shape[1])).any()):
        raise ValueError(f"labels must be class indices in [0, {logits.shape[1]}) (the columns of logits)")
    return (logits.argmax(dim=1) == labels).float().mean().item()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Accuracy of ``model`` on ``(x, y)`` in eval mode (the model's mode is restored afterwards).

    ``x`` is a non-empty float tensor (N, ...) of finite values and ``y`` its (N,) integer labels; anything else,
    like a ``model`` that is not a module, raises ``TypeError``/``ValueError``.
    """
    require_module(model)
    require_labelled_data(x, y, "x", "y")
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    was_training = model.training
    model.eval()
    try:
        logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
    return accuracy(logits, y)


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """One epoch's mini-batches: the indices ``0 .. n-1`` shuffled by ``generator``, cut into ``batch_size``
    pieces (the last one may be smaller)."""
    return torch.randperm(n, generator=generator).split(batch_size)


def clip_latent_weights(model: nn.Module, limit: float = 1.0) -> None:
    """Clamp the latent weights of every quantized layer to ``[-limit, limit]``.

    BinaryConnect (Courbariaux et al., 2015, Algorithm 1) and BNN clip the real-valued weights after each
    update; without it they can grow without bound where sign() no longer changes ("starved" weights).
    ``limit`` is a positive finite number (``ValueError`` otherwise).
    """
    require_module(model)
    limit = require_positive_number(limit, "limit")
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "weight_quantizer", None) is not None:
                module.weight.clamp_(-limit, limit)


def fit(model: nn.Module, data: Split, epochs: int = 10, lr: float = 1e-2, batch_size: int = 64,
        optimizer="adam", weight_clip: float | None = None, after_step=None, seed: int = 0,
        progress: bool = True, loss_fn=None) -> History:
    """Train ``model`` on ``data.x_train``/``data.y_train`` with cross-entropy; evaluate on the test set.

    ``optimizer`` is ``"adam"`` or ``"sgd"`` (momentum 0.9) with learning rate ``lr``, or a callable that takes
    the model's parameters and returns a ``torch.optim.Optimizer``, for any other optimizer or setting, e.g.
    ``optimizer=lambda params: ShiftAdaMax(params, lr=0.01)`` (``lr`` is then unused). Another name raises
    ``ValueError``, anything else ``TypeError``. ``weight_clip`` clips the latent weights of quantized layers
    after each step (:func:`clip_latent_weights`); ``after_step(model)`` runs after each step. Mini-batches are
    shuffled with a generator seeded by ``seed``. ``progress=False`` silences the progress bar (notebooks
    stored with their outputs do this). Returns a :class:`History`.

    Bad arguments raise ``TypeError``/``ValueError`` before training starts, among them data with NaN or
    infinity (checked once, not per batch).
    """
    require_module(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    require_labelled_data(data.x_train, data.y_train, "data.x_train", "data.y_train")
    require_labelled_data(data.x_test, data.y_test, "data.x_test", "data.y_test")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    lr = require_positive_number(lr, "lr")
    if weight_clip is not None:
        weight_clip = require_positive_number(weight_clip, "weight_clip")
    require_optional_callable(after_step, "after_step")
    require_optional_callable(loss_fn, "loss_fn")
    require_bool(progress, "progress")
    if isinstance(optimizer, str):
        if optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        elif optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        else:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    elif callable(optimizer):
        opt = optimizer(model.parameters())
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizer(params) must return a torch.optim.Optimizer, got {type(opt).__name__}")
    else:
        raise TypeError("optimizer must be 'adam', 'sgd' or a callable params -> torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    history = History()
    epochs_iter = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs_iter = tqdm(epochs_iter, desc="epochs", leave=False)
    n = len(data.x_train)
    for _ in epochs_iter:
        model.train()
        total_loss, correct = 0.0, 0
        for idx in minibatches(n, batch_size, generator):
            idx = idx.to(data.x_train.device)
            xb, yb = data.x_train[idx], data.y_train[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if weight_clip is not None:
                clip_latent_weights(model, weight_clip)
            if after_step is not None:
                after_step(model)
            total_loss += loss.item() * len(idx)
            correct += (logits.argmax(dim=1) == yb).sum().item()
        history.train_loss.append(total_loss / n)
        history.train_accuracy.append(correct / n)
        history.test_accuracy.append(evaluate(model, data.x_test, data.y_test))
        if progress:
            epochs_iter.set_postfix(loss=f"{history.train_loss[-1]:.3f}", test=f"{history.test_accuracy[-1]:.3f}")
    return history


def fit_loss(model: nn.Module, data: Split, batch_loss, epochs: int = 10, lr: float = 1e-2, batch_size: int = 64,
             seed: int = 0, weight_clip: float | None = None, params=None) -> History:
    """Train ``model`` with Adam (learning rate ``lr``) on ``batch_loss(idx, xb, yb)``, the loss of one
    mini-batch (``idx`` its rows of ``data.x_train``, ``xb, yb`` those rows), for a loss that needs more than the
    logits: a teacher's outputs, a block's features. ``params`` (default: the model's) are what Adam updates;
    ``weight_clip`` clips the latent weights after each step (:func:`clip_latent_weights`). Mini-batches are
    :func:`minibatches` of a generator seeded by ``seed``. Returns the mean training loss and the test accuracy
    per epoch (a :class:`History` without training accuracy).
    """
    require_module(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    if not callable(batch_loss):
        raise TypeError(f"batch_loss must be callable (idx, xb, yb) -> loss, got {type(batch_loss).__name__}")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    if weight_clip is not None:
        weight_clip = require_positive_number(weight_clip, "weight_clip")
    opt = torch.optim.Adam(model.parameters() if params is None else params, lr=require_positive_number(lr, "lr"))
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    history, n = History(), len(data.x_train)
    for _ in range(epochs):
        model.train()
        total = 0.0
        for idx in minibatches(n, batch_size, generator):
            loss = batch_loss(idx, data.x_train[idx], data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if weight_clip is not None:
                clip_latent_weights(model, weight_clip)
            total += loss.item() * len(idx)
        history.train_loss.append(total / n)
        history.test_accuracy.append(evaluate(model, data.x_test, data.y_test))
    return history
