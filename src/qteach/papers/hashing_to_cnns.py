r"""From Hashing to CNNs (BWNH): binary weights chosen to preserve the layer's inner products on real data.

Hu, Wang and Cheng observe that binarizing a layer is a hashing problem. A fully connected layer (or a
convolution, on unfolded patches) computes inner products :math:`X W^\top` between inputs :math:`X \in
\mathbb{R}^{n \times d}` and filters :math:`W \in \mathbb{R}^{c \times d}`. A binary weight network replaces each
filter :math:`w_i` by :math:`\alpha_i b_i` with :math:`b_i \in \{-1, +1\}^d`; the layer is preserved when the
inner products are, which is the objective of *inner-product preserving hashing*:

.. math::
    \min_{B, \alpha}\; \big\lVert X W^\top - X B^\top \operatorname{diag}(\alpha) \big\rVert_F^2
    = \sum_i \lVert X w_i - \alpha_i X b_i \rVert^2, \qquad B \in \{-1, +1\}^{c \times d}

XNOR-Net's binary weights solve a *different*, data-free problem, :math:`\min \lVert w_i - \alpha_i b_i \rVert^2`,
whose solution is :math:`b_i = \operatorname{sign}(w_i)`, :math:`\alpha_i = \lVert w_i \rVert_1 / d`
(:func:`xnor_binarize`). The two coincide when :math:`X^\top X \propto I` (whitened inputs); on real activations,
which are correlated and unevenly scaled, the data-aware solution keeps the layer's outputs closer.

The data enter only through :math:`S = X^\top X` (:func:`input_gram`). The problem is solved by alternating
optimisation (:func:`hash_binarize`), starting from XNOR-Net's solution:

- **α-step**, :math:`B` fixed: a 1-D least-squares problem per filter, :math:`\alpha_i = \frac{b_i^\top S w_i}
  {b_i^\top S b_i}` (:func:`optimal_scales`);
- **B-step**, :math:`\alpha` fixed: bit-by-bit (discrete coordinate) updates; bit :math:`j` of every filter is set
  to the exact minimiser with the other bits fixed,
  :math:`b_{ij} = \operatorname{sign}\big(\alpha_i (S w_i)_j - \alpha_i^2 \sum_{k \ne j} S_{jk} b_{ik}\big)`
  (:func:`update_codes`).

Each step can only lower the objective, so the result is never worse than XNOR-Net's on the data it was fitted to
(the tests check that, and the notebook checks held-out inputs).

What could not be verified for this book: the paper's equation numbers, the exact form and order of its B-step and
its iteration counts (the objective and the alternating scheme are those of the abstract and the brief the notebook
follows); the paper also fine-tunes the network afterwards, which is not reproduced. No official code is listed.

References:

- Hu, Wang, Cheng, *From Hashing to CNNs: Training Binary Weight Networks via Hashing*, AAAI 2018.
  https://arxiv.org/abs/1802.02733
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_float_tensor, require_int, require_no_nan

__all__ = [
    "xnor_binarize",
    "input_gram",
    "optimal_scales",
    "update_codes",
    "objective",
    "hash_binarize",
    "inner_product_error",
    "HashingWeightQuantizer",
    "binarize_mlp",
]


def _require_matrix(value, name: str) -> torch.Tensor:
    require_float_tensor(value, name)
    if value.dim() != 2 or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-D tensor, got shape {tuple(value.shape)}")
    require_no_nan(value, name)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite")
    return value


def _require_pair(w: torch.Tensor, x: torch.Tensor) -> None:
    _require_matrix(w, "w")
    _require_matrix(x, "x")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but w has {w.shape[1]} inputs per filter (w is (out, in))")


def _require_gram(s: torch.Tensor, d: int) -> torch.Tensor:
    _require_matrix(s, "s")
    if s.shape != (d, d):
        raise ValueError(f"s must be the ({d}, {d}) Gram matrix X^T X of the layer's inputs, got {tuple(s.shape)}")
    return s


def xnor_binarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""XNOR-Net's data-free binary weights: ``(alpha, B)`` with :math:`B = \operatorname{sign}(W)` and
    :math:`\alpha_i = \frac{1}{d}\lVert w_i \rVert_1` per filter (row), the minimiser of
    :math:`\lVert w_i - \alpha_i b_i \rVert^2` (:func:`qteach.binary.mean_abs_scale`). ``alpha`` has shape (c,)."""
    _require_matrix(w, "w")
    return binary.mean_abs_scale(w.detach(), per_channel=True).reshape(-1), binary.sign(w.detach())


def input_gram(x: torch.Tensor) -> torch.Tensor:
    r""":math:`S = X^\top X` of a batch of layer inputs ``x`` of shape (n, d), in float64: all the objective needs
    from the data, since :math:`\lVert X w - \alpha X b\rVert^2 = (w - \alpha b)^\top S (w - \alpha b)`."""
    _require_matrix(x, "x")
    x = x.detach().double()
    return x.T @ x


def optimal_scales(w: torch.Tensor, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r"""The α-step: :math:`\alpha_i = \arg\min_\alpha \lVert X w_i - \alpha X b_i \rVert^2 = \frac{b_i^\top S w_i}
    {b_i^\top S b_i}` for every filter (shape (c,)); 0 where :math:`b_i^\top S b_i = 0`."""
    _require_matrix(w, "w")
    if not isinstance(b, torch.Tensor) or b.shape != w.shape:
        raise ValueError(f"b must be a tensor of w's shape {tuple(w.shape)}")
    _require_gram(s, w.shape[1])
    w, b, s = w.detach().double(), b.detach().double(), s.double()
    numerator = ((b @ s) * w).sum(1)
    denominator = ((b @ s) * b).sum(1)
    safe = denominator > 0
    return torch.where(safe, numerator / torch.where(safe, denominator, torch.ones_like(denominator)),
                       torch.zeros_like(numerator))


def update_codes(w: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor, s: torch.Tensor,
                 sweeps: int = 1) -> torch.Tensor:
    r"""The B-step: ``sweeps`` passes of bit-by-bit updates, each bit set to the exact minimiser with the others
    fixed. For filter :math:`i` and bit :math:`j`, the terms of :math:`(w_i - \alpha_i b_i)^\top S (w_i - \alpha_i
    b_i)` that depend on :math:`b_{ij}` are :math:`2 b_{ij} \big(\alpha_i^2 \sum_{k \ne j} S_{jk} b_{ik} -
    \alpha_i (S w_i)_j\big)` (:math:`b_{ij}^2 = 1`), so

    .. math:: b_{ij} \leftarrow \operatorname{sign}\Big(\alpha_i (S w_i)_j - \alpha_i^2
        \sum_{k \ne j} S_{jk} b_{ik}\Big)

    (:math:`\operatorname{sign}(0) = +1`, either value being optimal then). All filters are updated together, bit
    :math:`j = 1 \dots d` in turn. Returns the new codes (float64, :math:`\pm 1`)."""
    _require_matrix(w, "w")
    if not isinstance(b, torch.Tensor) or b.shape != w.shape:
        raise ValueError(f"b must be a tensor of w's shape {tuple(w.shape)}")
    _require_gram(s, w.shape[1])
    sweeps = require_int(sweeps, "sweeps", minimum=1)
    if torch.as_tensor(alpha).numel() != w.shape[0]:
        raise ValueError(f"alpha must have one entry per filter ({w.shape[0]}), got {torch.as_tensor(alpha).numel()}")
    s = s.double()
    alpha = torch.as_tensor(alpha).detach().double().reshape(-1, 1)
    b = b.detach().double().clone()
    sw = w.detach().double() @ s  # (S w_i)_j for every filter i (S is symmetric)
    diag = torch.diagonal(s)
    for _ in range(sweeps):
        for j in range(w.shape[1]):
            others = b @ s[:, j] - b[:, j] * diag[j]
            b[:, j] = binary.sign(alpha[:, 0] * sw[:, j] - alpha[:, 0] ** 2 * others)
    return b


def objective(w: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i (w_i - \alpha_i b_i)^\top S (w_i - \alpha_i b_i) = \lVert X W^\top - X B^\top
    \operatorname{diag}(\alpha) \rVert_F^2` (float64 0-d tensor)."""
    _require_matrix(w, "w")
    s = _require_gram(s, w.shape[1]).double()
    r = w.detach().double() - torch.as_tensor(alpha).detach().double().reshape(-1, 1) * b.detach().double()
    return ((r @ s) * r).sum()


def hash_binarize(w: torch.Tensor, x: torch.Tensor, iterations: int = 10, sweeps: int = 1,
                  return_history: bool = False):
    r"""BWNH's alternating optimisation for one layer: ``(alpha, B)`` minimising
    :math:`\lVert X W^\top - X B^\top \operatorname{diag}(\alpha) \rVert_F^2` on the inputs ``x`` (n, d).

    Starts from :func:`xnor_binarize`, then repeats ``iterations`` times: the α-step (:func:`optimal_scales`) and
    the B-step (:func:`update_codes`, ``sweeps`` passes over the bits), and ends with an α-step. ``w`` is
    (c, d) as in ``nn.Linear``. With ``return_history=True`` also returns the objective after the start and after
    every iteration (non-increasing). ``alpha`` (c,) and ``B`` (c, d) are in ``w``'s dtype.
    """
    _require_pair(w, x)
    iterations = require_int(iterations, "iterations", minimum=0)
    s = input_gram(x)
    alpha, b = xnor_binarize(w)
    alpha, b = alpha.double(), b.double()
    history = [float(objective(w, b, alpha, s))]
    for _ in range(iterations):
        alpha = optimal_scales(w, b, s)
        b = update_codes(w, b, alpha, s, sweeps)
        history.append(float(objective(w, b, alpha, s)))
    alpha = optimal_scales(w, b, s)
    if iterations:
        history[-1] = float(objective(w, b, alpha, s))
    out = (alpha.to(w.dtype), b.to(w.dtype))
    return (*out, history) if return_history else out


def inner_product_error(x: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor, b: torch.Tensor) -> float:
    r"""The relative inner-product error :math:`\lVert X W^\top - X B^\top \operatorname{diag}(\alpha)
    \rVert_F^2 / \lVert X W^\top \rVert_F^2` on inputs ``x`` (n, d), e.g. held-out ones."""
    _require_pair(w, x)
    x, w = x.detach().double(), w.detach().double()
    approx = torch.as_tensor(alpha).detach().double().reshape(-1, 1) * b.detach().double()
    target = x @ w.T
    return float(((target - x @ approx.T) ** 2).sum() / (target**2).sum().clamp(min=torch.finfo(torch.float64).tiny))


class HashingWeightQuantizer(nn.Module):
    r"""Binary weights :math:`\alpha_i b_i` per output unit as a ``weight_quantizer``, data-aware once it has
    seen inputs.

    :meth:`observe` accumulates :math:`S = X^\top X` from batches of the layer's inputs (n, d); for a convolution,
    pass unfolded patches (``torch.nn.functional.unfold``, transposed to (n, C k k)). Every forward pass then
    runs :func:`hash_binarize`'s alternation on the current weights (reshaped to (out, d)) with ``iterations``
    steps; before any :meth:`observe` it falls back to XNOR-Net's closed form. The backward pass is the
    straight-through estimator (the gradient reaches the latent weights unchanged), for fine-tuning. Each forward
    costs ``iterations`` x d small matrix-vector updates, so it suits calibration and short fine-tuning.
    ``precision = 1``.
    """

    precision = 1

    def __init__(self, iterations: int = 5):
        super().__init__()
        self.iterations = require_int(iterations, "iterations", minimum=0)
        self.register_buffer("gram", torch.zeros(0, dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "gram" in state_dict:
            self.gram = torch.empty_like(state_dict[prefix + "gram"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Add ``x.T @ x`` of a batch of layer inputs (n, d) to the stored Gram matrix."""
        s = input_gram(x)
        if self.gram.numel() == 0:
            self.gram = s.to(self.gram.device)
        elif self.gram.shape != s.shape:
            raise ValueError(f"x has {s.shape[0]} features, the stored Gram matrix {self.gram.shape[0]}")
        else:
            self.gram = self.gram + s.to(self.gram.device)

    def binarize(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha, B)`` for weights ``w`` (out, ...): data-aware if inputs were observed, XNOR-Net's otherwise."""
        flat = w.detach().reshape(w.shape[0], -1)
        if self.gram.numel() == 0:
            return xnor_binarize(flat)
        s = _require_gram(self.gram, flat.shape[1])
        alpha, b = xnor_binarize(flat)
        alpha, b = alpha.double(), b.double()
        for _ in range(self.iterations):
            alpha = optimal_scales(flat, b, s)
            b = update_codes(flat, b, alpha, s)
        alpha = optimal_scales(flat, b, s)
        return alpha.to(w.dtype), b.to(w.dtype)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_float_tensor(w, "w")
        if w.dim() < 2:
            raise ValueError(f"w must have an output dimension first and at least 2 dimensions, got {tuple(w.shape)}")
        alpha, b = self.binarize(w)
        quantized = (alpha.reshape(-1, 1) * b).reshape(w.shape)
        return binary.straight_through(w, quantized)

    def extra_repr(self) -> str:
        observed = "observed" if self.gram.numel() else "not observed (XNOR-Net fallback)"
        return f"iterations={self.iterations}, inputs {observed}"


@torch.no_grad()
def binarize_mlp(model: nn.Sequential, x: torch.Tensor, method: str = "hashing", iterations: int = 10,
                 skip: tuple = ()) -> nn.Sequential:
    r"""A copy of the trained ``nn.Sequential`` ``model`` with the weights of its ``nn.Linear`` layers replaced by
    binary weights :math:`\alpha_i b_i`, without retraining.

    ``method="xnor"`` uses :func:`xnor_binarize` (no data); ``method="hashing"`` uses :func:`hash_binarize` on the
    inputs each layer receives when ``x`` (calibration samples, (n, in_features)) goes through the copy whose
    earlier layers are *already binarized*, layer after layer, so that each layer's codes are fitted to the inputs
    it will actually see. The layers whose indices are in ``skip`` keep their float weights. Biases stay float.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    if method not in ("xnor", "hashing"):
        raise ValueError(f"method must be 'xnor' or 'hashing', got {method!r}")
    _require_matrix(x, "x")
    out = copy.deepcopy(model).eval()
    h = x.detach().to(next(out.parameters()).dtype)
    for index, layer in enumerate(out):
        if isinstance(layer, nn.Linear) and index not in skip:
            if method == "xnor":
                alpha, b = xnor_binarize(layer.weight)
            else:
                alpha, b = hash_binarize(layer.weight, h, iterations)
            layer.weight.copy_(alpha.reshape(-1, 1) * b)
        h = layer(h)
    return out
