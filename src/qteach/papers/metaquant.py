r"""MetaQuant: a small shared *meta quantizer* network learns the gradient through the quantizer.

Chen, Wang and Pan, *MetaQuant: Learning to Quantize by Learning to Penetrate Non-differentiable
Quantization*, NeurIPS 2019; official code https://github.com/csyhhu/MetaQuant. Equation numbers are those of the
preprint stored in that repository (``MetaQuant-Preprint.pdf``, 11 pages), the text this module was written from.

A weight :math:`W` is pre-processed, :math:`\widetilde W = A(W)`, then quantized, :math:`\widehat W = Q(\widetilde
W)` (eq. 1 for DoReFa, eq. 2 for BWN). The gradient :math:`g_{\widehat W}` of the loss is known; the STE takes
:math:`g_{\widetilde W} = g_{\widehat W}\,1_{|\widetilde W| \le 1}`. MetaQuant instead asks a coordinate-wise
network :math:`M_\phi` (eq. 3), shared by all layers, and trains :math:`\phi` through the next forward pass, which
uses the weight *after* the update that :math:`M_\phi` proposed (eq. 6–8).

Where the official code and the paper differ, this module follows the code and says so in the docstring.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary, train
from qteach import nn as qnn
from qteach._validate import (
    require_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_positive_number,
    require_str,
)
from qteach.papers import dorefa_net

KINDS = ("bwn", "dorefa")
NONLINEAR = (None, "relu", "tanh")
REFINEMENTS = ("sgd", "adam")


def _require_kind(kind) -> str:
    if require_str(kind, "kind") not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def preprocess(w: torch.Tensor, kind: str) -> torch.Tensor:
    r"""The pre-processing :math:`\widetilde W = A(W)` of eq. 1 (DoReFa) and eq. 2 (BWN).

    .. math::
        \text{dorefa: } \widetilde W = \frac{\tanh W}{2 \max|\tanh W|} + \frac{1}{2}, \qquad
        \text{BWN: } \widetilde W = W

    The maximum is a constant for autograd, as in the official code (``meta_quantized_module.py`` l. 215).
    """
    require_float_tensor(w, "w")
    _require_kind(kind)
    if kind == "bwn":
        return w * 1.0
    t = torch.tanh(w)
    return t / (2 * t.abs().max().detach()) + 0.5


def calibration(w: torch.Tensor, kind: str) -> torch.Tensor:
    r"""The factor :math:`\partial \widetilde W / \partial W` of eq. 4 ("calibration"), as the paper writes it:

    .. math::
        \text{dorefa: } \frac{1 - \tanh^2 W}{\max|\tanh W|}, \qquad \text{BWN: } 1

    (The exact derivative of eq. 1 has a further factor :math:`\tfrac12`; the paper and the code,
    ``meta_quantized_module.py`` l. 185–186, leave it out: a constant scale of the learning rate.)
    """
    require_float_tensor(w, "w")
    _require_kind(kind)
    if kind == "bwn":
        return torch.ones_like(w)
    t = torch.tanh(w.detach())
    return (1 - t**2) / t.abs().max()


def quantize(w_tilde: torch.Tensor, kind: str, bits: int = 1) -> torch.Tensor:
    r"""The forward quantizer :math:`\widehat W = Q(\widetilde W)` of eq. 1 and eq. 2 (``bits`` for DoReFa only).

    .. math::
        \text{dorefa: } \widehat W = 2\,\frac{\operatorname{round}\big((2^k-1)\widetilde W\big)}{2^k-1} - 1,
        \qquad \text{BWN: } \widehat W = \tfrac1n \lVert \widetilde W \rVert_{\ell 1}\,
        \operatorname{sign}(\widetilde W)

    Its backward pass is the STE :math:`1_{|\widetilde W| \le 1}` (``utils/quantize.py`` l. 21–26 and 37–42), with
    the BWN scale a constant: in MetaQuant it is only used on the path from the loss to :math:`\phi`.
    """
    require_float_tensor(w_tilde, "w_tilde")
    _require_kind(kind)
    bits = require_bits(bits, "bits")
    if kind == "bwn":
        if bits != 1:
            raise ValueError(f"bits must be 1 for kind='bwn', got {bits}")
        return binary.mean_abs_scale(w_tilde.detach(), per_channel=False) * binary.ste_sign(w_tilde, clip=1.0)
    return 2 * dorefa_net.quantize_k(w_tilde, bits) - 1


class MultiFC(nn.Module):
    r"""The meta quantizer's network :math:`\mathrm{FCs}(\phi, \sigma, \widetilde W)` of MultiFC (eq. 10):
    ``layers`` bias-free fully connected layers 1 → ``hidden`` → … → 1, applied to every weight on its own,
    with the non-linearity ``nonlinear`` (``None``, ``"relu"`` or ``"tanh"``) between them.

    The paper's CIFAR setting is 2 layers, hidden size 100, no non-linearity (sec. 5.1); the official code is
    ``MetaDesignedMultiFC`` (``meta_utils/meta_network.py`` l. 115–141). Without a non-linearity the layers
    multiply out to one number :math:`c`, so that :math:`M_\phi = c\,g_{\widehat W}\,\widetilde W`; PyTorch's
    random initialisation gives :math:`c < 0` (a step uphill) about half of the time. ``symmetric_init=True``
    fills the first layers with :math:`1/\text{hidden}` and the last with 1, so that :math:`c = 1` at the start
    (our extension to MultiFC of the official ``MetaFC(symmetric_init=True)``, ``meta_network.py`` l. 69-71).
    """

    def __init__(self, hidden: int = 100, layers: int = 2, nonlinear: str | None = None,
                 symmetric_init: bool = False):
        super().__init__()
        hidden = require_int(hidden, "hidden", minimum=1)
        layers = require_int(layers, "layers", minimum=1)
        if nonlinear not in NONLINEAR:
            raise ValueError(f"nonlinear must be one of {NONLINEAR}, got {nonlinear!r}")
        sizes = [1] + [hidden] * (layers - 1) + [1]
        modules: list[nn.Module] = []
        for i in range(layers):
            modules.append(nn.Linear(sizes[i], sizes[i + 1], bias=False))
            if nonlinear is not None and i < layers - 1:
                modules.append(nn.ReLU() if nonlinear == "relu" else nn.Tanh())
        self.net = nn.Sequential(*modules)
        if require_bool(symmetric_init, "symmetric_init"):
            linears = [m for m in modules if isinstance(m, nn.Linear)]
            with torch.no_grad():
                for m in linears[:-1]:
                    m.weight.fill_(1.0 / hidden)
                linears[-1].weight.fill_(1.0)

    def forward(self, w_tilde: torch.Tensor) -> torch.Tensor:
        require_float_tensor(w_tilde, "w_tilde")
        return self.net(w_tilde.reshape(-1, 1)).reshape(w_tilde.shape)


def meta_gradient(meta: nn.Module, g_hat: torch.Tensor, w_tilde: torch.Tensor) -> torch.Tensor:
    r"""The meta gradient of eq. 3 with MultiFC's form (eq. 10):

    .. math:: g_{\widetilde W} = M_\phi(g_{\widehat W}, \widetilde W) = g_{\widehat W} \cdot
        \mathrm{FCs}(\phi, \sigma, \widetilde W)

    Both inputs are constants; the result depends on :math:`\phi` (``meta_utils/helpers.py`` l. 44–55).
    """
    require_module(meta, "meta")
    require_float_tensor(g_hat, "g_hat")
    require_float_tensor(w_tilde, "w_tilde")
    if g_hat.shape != w_tilde.shape:
        raise ValueError(f"g_hat and w_tilde must have the same shape, got {tuple(g_hat.shape)} and "
                         f"{tuple(w_tilde.shape)}")
    return g_hat.detach() * meta(w_tilde.detach())


def ste_gradient(g_hat: torch.Tensor, w_tilde: torch.Tensor) -> torch.Tensor:
    r"""The STE as a (fixed) meta quantizer (sec. 4.3): :math:`g_{\widetilde W} = g_{\widehat W}\cdot
    1_{|\widetilde W| \le 1}`."""
    require_float_tensor(g_hat, "g_hat")
    require_float_tensor(w_tilde, "w_tilde")
    if g_hat.shape != w_tilde.shape:
        raise ValueError(f"g_hat and w_tilde must have the same shape, got {tuple(g_hat.shape)} and "
                         f"{tuple(w_tilde.shape)}")
    return g_hat * (w_tilde.abs() <= 1).to(g_hat.dtype)


class Refinement:
    r"""The gradient refinement :math:`\pi` of eq. 5 for one tensor: ``"sgd"`` returns :math:`g` unchanged,
    ``"adam"`` the step direction of Adam (Kingma and Ba) with its running moments, so that
    :math:`W - \alpha\,\pi(g)` is exactly ``torch.optim.Adam``'s step (default betas and eps)."""

    def __init__(self, kind: str = "adam", betas=(0.9, 0.999), eps: float = 1e-8):
        if require_str(kind, "kind") not in REFINEMENTS:
            raise ValueError(f"kind must be one of {REFINEMENTS}, got {kind!r}")
        self.kind, self.betas, self.eps = kind, betas, require_positive_number(eps, "eps")
        self.step, self.m, self.v = 0, None, None

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        require_float_tensor(g, "g")
        if self.kind == "sgd":
            return g
        b1, b2 = self.betas
        if self.m is None:
            self.m, self.v = torch.zeros_like(g), torch.zeros_like(g)
        self.step += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.v / (1 - b2**self.step)).sqrt() + self.eps
        return self.m / (1 - b1**self.step) / denom


class MetaQuantizer(nn.Module):
    r"""A ``weight_quantizer`` for :class:`qteach.nn.QuantLinear` trained the MetaQuant way (eq. 6–7):

    .. math:: \widehat W^t = Q\Big(A\big[W^{t-1} - \alpha\,\pi\big(M_\phi(g^{t-1}_{\widehat W},
        \widetilde W^{t-1})\,\tfrac{\partial \widetilde W}{\partial W}\big)\big]\Big)

    :func:`fit` sets ``pending = (g_W, delta)`` before the forward pass: ``g_W`` the calibrated meta gradient (a
    function of :math:`\phi`), ``delta`` :math:`\pi(g_W)` as a constant. The forward pass uses
    :math:`W - \alpha\,(g_W + (\delta - g_W)_{\text{const}})`: its value is the updated weight, its gradient
    reaches :math:`\phi` through :math:`g_W` (the code's trick, ``meta_quantized_module.py`` l. 196–198). It
    records :math:`\widetilde W` and, in the backward pass, :math:`g_{\widehat W}` for the next step.
    """

    def __init__(self, kind: str = "bwn", bits: int = 1):
        super().__init__()
        self.kind = _require_kind(kind)
        self.precision = require_bits(bits, "bits")
        quantize(torch.zeros(1), kind, bits)  # checks the pair (kind, bits)
        self.lr, self.pending, self.w_tilde, self.g_hat = 0.0, None, None, None

    def _save_grad(self, grad):
        self.g_hat = grad.detach().clone()

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        require_float_tensor(weight, "weight")
        w = weight
        if self.pending is not None:
            g_w, delta = self.pending
            w = weight - self.lr * (g_w + (delta - g_w).detach())
        w_tilde = preprocess(w, self.kind)
        w_hat = quantize(w_tilde, self.kind, self.precision)
        if self.training and w_hat.requires_grad:
            self.w_tilde = w_tilde.detach().clone()
            w_hat.register_hook(self._save_grad)
        return w_hat

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, bits={self.precision}"


def quantized_pairs(model: nn.Module) -> list:
    """The ``(layer, MetaQuantizer)`` pairs of ``model``, in module order."""
    require_module(model)
    return [(m, m.weight_quantizer) for m in model.modules()
            if isinstance(getattr(m, "weight_quantizer", None), MetaQuantizer)]


def fit(model: nn.Module, data, meta: nn.Module | None, epochs: int = 10, lr: float = 3e-3,
        meta_lr: float = 1e-3, batch_size: int = 128, refinement: str = "adam", seed: int = 0,
        after_epoch=None) -> list:
    r"""Algorithm 1: train ``model`` (whose quantized layers use :class:`MetaQuantizer`) with the shared meta
    quantizer ``meta`` (Adam, learning rate ``meta_lr`` = :math:`\gamma`, eq. 8) and the refinement
    ``refinement`` for the quantized weights (learning rate ``lr`` = :math:`\alpha`, eq. 5). ``meta=None`` puts
    the STE in its place (:func:`ste_gradient`), in the same loop. The other parameters (full-precision layers,
    batch norm, biases) follow their own gradients with the same optimizer. As in Algorithm 1, the quantized
    weights are not updated at the first step (no :math:`g_{\widehat W}` yet). ``after_epoch(epoch)`` runs after
    each epoch. Returns the training loss of every epoch.
    """
    require_module(model)
    if meta is not None and not isinstance(meta, nn.Module):
        raise TypeError(f"meta must be a torch.nn.Module or None, got {type(meta).__name__}")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    lr, meta_lr = require_positive_number(lr, "lr"), require_positive_number(meta_lr, "meta_lr")
    if require_str(refinement, "refinement") not in REFINEMENTS:
        raise ValueError(f"refinement must be one of {REFINEMENTS}, got {refinement!r}")
    pairs = quantized_pairs(model)
    if not pairs:
        raise ValueError("model must have at least one layer whose weight_quantizer is a MetaQuantizer")
    quantized = {id(layer.weight) for layer, _ in pairs}
    others = [p for p in model.parameters() if id(p) not in quantized]
    make = torch.optim.Adam if refinement == "adam" else torch.optim.SGD
    opt = make(others, lr=lr)
    meta_opt = torch.optim.Adam(meta.parameters(), lr=meta_lr) if meta is not None else None
    refine = {id(layer.weight): Refinement(refinement) for layer, _ in pairs}
    for _, q in pairs:
        q.lr, q.pending, q.g_hat, q.w_tilde = lr, None, None, None
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    loss_fn, losses, n = nn.CrossEntropyLoss(), [], len(data.x_train)
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in train.minibatches(n, batch_size, generator):
            for layer, q in pairs:  # eq. 3-5: the update proposed by the meta quantizer
                if q.g_hat is not None:
                    g_tilde = (ste_gradient(q.g_hat, q.w_tilde) if meta is None
                               else meta_gradient(meta, q.g_hat, q.w_tilde))
                    g_w = g_tilde * calibration(layer.weight.detach(), q.kind)
                    q.pending = (g_w, refine[id(layer.weight)](g_w.detach()))
            loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])  # eq. 6-7
            opt.zero_grad()
            if meta_opt is not None:
                meta_opt.zero_grad()
            loss.backward()  # eq. 8, and the next g_hat
            opt.step()
            if meta_opt is not None:
                meta_opt.step()
            with torch.no_grad():  # late weight update (Algorithm 1, l. 10-12)
                for layer, q in pairs:
                    layer.weight.grad = None
                    if q.pending is not None:
                        layer.weight -= lr * q.pending[1]
                        q.pending = None
            total += loss.item() * len(idx)
        losses.append(total / n)
        if after_epoch is not None:
            after_epoch(epoch)
    for _, q in pairs:
        q.pending, q.g_hat, q.w_tilde = None, None, None
    return losses


def comparison_layer(w_bits: int, a_bits: int):
    """``(weight_quantizer, input_quantizer, activation)`` of the results pages: 1-bit DoReFa weights (eq. 1,
    the forward quantizer the paper pairs with MultiFC) trained by MetaQuant, full-precision inputs, ReLU."""
    w_bits, a_bits = require_bits(w_bits, "w_bits"), require_bits(a_bits, "a_bits")
    if w_bits != 1 or a_bits != 32:
        raise ValueError(f"MetaQuant's results-page layer has w_bits=1 and a_bits=32, got {w_bits}/{a_bits}")
    return MetaQuantizer("dorefa", 1), None, nn.ReLU()


def protocol_fit(model: nn.Module, data, seed: int, protocol) -> list:
    r"""The results pages' ``fit``: :func:`fit` with a fresh MultiFC (2 layers, hidden 100, no non-linearity,
    the paper's CIFAR setting; symmetric initialisation, so that it starts as :math:`g\,\widetilde W`), Adam
    refinement, the protocol's epochs, batch size and learning rate, and the paper's :math:`\gamma = 10^{-3}`."""
    require_module(model)
    meta = MultiFC(hidden=100, layers=2, symmetric_init=True)
    return fit(model, data, meta, epochs=protocol.epochs, lr=protocol.lr, meta_lr=1e-3,
               batch_size=protocol.batch_size, refinement="adam", seed=seed)


def mlp(in_features: int = 64, hidden: int = 32, classes: int = 10, kind: str = "dorefa",
        bits: int = 1) -> nn.Sequential:
    """The chapter's network: ``in_features`` → ``hidden`` → ``hidden`` → ``hidden`` → ``classes``, the first
    and last layers in full precision, the two middle ones quantized by :class:`MetaQuantizer` (``kind``,
    ``bits``), batch norm and ReLU after each hidden layer (the results pages' layout, narrower)."""
    in_features = require_int(in_features, "in_features", minimum=1)
    hidden = require_int(hidden, "hidden", minimum=1)
    classes = require_int(classes, "classes", minimum=1)
    layers: list[nn.Module] = [nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
    for _ in range(2):
        layers += [qnn.QuantLinear(hidden, hidden, weight_quantizer=MetaQuantizer(kind, bits)),
                   nn.BatchNorm1d(hidden), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, classes))
