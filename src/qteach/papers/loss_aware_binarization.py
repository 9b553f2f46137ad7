r"""Loss-aware binarization (LAB): binary weights from a proximal Newton step, curvature from Adam.

Hou, Yao and Kwok (ICLR 2017) binarize each layer's weights as :math:`\hat w_l = \alpha_l b_l`,
:math:`b_l \in \{\pm 1\}^{n_l}`, :math:`\alpha_l > 0`, and choose them to lower the *loss*, not to approximate
the real weights. One proximal Newton step with a diagonal approximation :math:`D = \operatorname{diag}(d)` of
the Hessian minimizes

.. math:: \nabla\ell(\hat w^{t-1})^\top (\hat w - \hat w^{t-1})
    + \tfrac12 (\hat w - \hat w^{t-1})^\top D^{t-1} (\hat w - \hat w^{t-1})
    \quad \text{s.t. } \hat w_l = \alpha_l b_l ,

whose closed-form solution per layer is (:func:`lab_binarize`)

.. math:: w_l^t = \hat w_l^{t-1} - \nabla_l \ell(\hat w^{t-1}) \oslash d_l^{t-1}, \qquad
    \alpha_l^t = \frac{\lVert d_l^{t-1} \odot w_l^t \rVert_1}{\lVert d_l^{t-1} \rVert_1}, \qquad
    b_l^t = \operatorname{sign}(w_l^t) .

Equivalently, :math:`(\alpha_l, b_l)` minimizes the :math:`d`-weighted distance
:math:`\sum_i d_i (w_i - \alpha b_i)^2` (:func:`weighted_distance`). As in BinaryConnect, the paper keeps a
full-precision :math:`w_l` and updates it with the gradient at the binary weights; with Adam, the diagonal is
Adam's own preconditioner, :math:`d_l = \varepsilon + \sqrt{\hat v_l}` (:func:`adam_curvature`, up to the
constant factor :math:`1/\eta`, which cancels in :math:`\alpha`), and the update of :math:`w` is Adam's step.
With :math:`d = \mathbf 1` the formula gives BWN's :math:`\alpha = \lVert w \rVert_1 / n` (XNOR-Net); without
:math:`\alpha` it is BinaryConnect's :math:`\operatorname{sign}(w)`.

**What comes from where.** The closed form and the use of Adam's second moment are in the abstract (arXiv
1611.01600). The official code (https://github.com/houlu369/Loss-aware-Binarization, ``FNN/lab.py``; Theano)
confirms the details used here: ``binarization`` (lines 41-53) computes ``L = sqrt(Wacc) + 1e-8`` and
``alpha = |L * W|.sum() / L.sum()`` with ``b = sign(W)`` (sign(0) = +1, via ``round(hard_sigmoid(W))``);
``compute_grads`` (line 128) takes the gradient at the binarized weights and hands it to the latent weights
unchanged; ``clipping_scaling`` (line 141) clips the latent weights to [-1, 1] after each update; and ``FNN/mnist.py``
(lines 151-153) keeps ``Wacc`` as its own second-moment accumulator with :math:`\beta_2 = 0.999` and *no* bias
correction (a common factor of :math:`d`, which cancels in :math:`\alpha` up to the 1e-8), starting from zero,
so that the first step uses :math:`d = 10^{-8}\mathbf 1`, i.e. BWN's :math:`\alpha`. The paper's own equation and
proposition numbers could not be read for this book, so none is cited by number.

References:

- L. Hou, Q. Yao, J. T. Kwok, *Loss-aware Binarization of Deep Networks*, ICLR 2017. arXiv:1611.01600
- Official code: https://github.com/houlu369/Loss-aware-Binarization
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_float_tensor, require_module, require_no_nan

__all__ = ["lab_binarize", "weighted_distance", "adam_curvature", "LABWeight", "update_curvature"]


def _require_weights(w, name: str = "w") -> torch.Tensor:
    require_float_tensor(w, name)
    if w.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    require_no_nan(w, name)
    return w


def _require_d(d, w) -> torch.Tensor:
    require_float_tensor(d, "d")
    if d.shape != w.shape:
        raise ValueError(f"d must have the shape of w {tuple(w.shape)}, got {tuple(d.shape)}")
    if not bool((d > 0).all()):
        raise ValueError("d must be positive everywhere (a diagonal Hessian approximation)")
    return d


def lab_binarize(w: torch.Tensor, d: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""LAB's closed-form binarization of one layer: :math:`\alpha = \lVert d \odot w \rVert_1 / \lVert d
    \rVert_1`, :math:`b = \operatorname{sign}(w)` (sign(0) = +1). ``d`` defaults to ones (BWN's
    :math:`\alpha`). Returns ``(alpha, b)`` with ``alpha`` a 0-d tensor (one per layer)."""
    _require_weights(w)
    d = torch.ones_like(w) if d is None else _require_d(d, w)
    alpha = (d * w.abs()).sum() / d.sum()
    return alpha, binary.sign(w)


def weighted_distance(w: torch.Tensor, alpha, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i d_i (w_i - \alpha b_i)^2`, the quadratic that :func:`lab_binarize` minimizes."""
    _require_weights(w)
    _require_d(d, w)
    return (d * (w - alpha * b) ** 2).sum()


def adam_curvature(optimizer: torch.optim.Adam, param: torch.Tensor) -> torch.Tensor | None:
    r"""Adam's diagonal preconditioner for ``param``: :math:`d = \varepsilon + \sqrt{v / (1 - \beta_2^t)}`,
    or ``None`` before the first step."""
    if not isinstance(optimizer, torch.optim.Adam):
        raise TypeError(f"optimizer must be a torch.optim.Adam, got {type(optimizer).__name__}")
    state = optimizer.state.get(param)
    if not state or "exp_avg_sq" not in state:
        return None
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    beta2, eps = group["betas"][1], group["eps"]
    step = float(state["step"])
    return eps + (state["exp_avg_sq"] / (1 - beta2**step)).sqrt()


class _ScaledSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, alpha):
        return alpha * binary.sign(w)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None  # the gradient at the binary weights updates the latent weights


class LABWeight(nn.Module):
    r"""Weight quantizer :math:`\hat w = \alpha\,\operatorname{sign}(w)` with one :math:`\alpha` per layer.

    ``mode="lab"``: :math:`\alpha = \lVert d \odot w\rVert_1/\lVert d\rVert_1` with the buffer ``d`` (ones until
    :func:`update_curvature` fills it from Adam); ``"bwn"``: :math:`d = 1`; ``"binaryconnect"``: no
    :math:`\alpha`. The backward pass hands the gradient at :math:`\hat w` to :math:`w` unchanged, as in
    BinaryConnect. ``precision = 1``.
    """

    precision = 1
    MODES = ("lab", "bwn", "binaryconnect")

    def __init__(self, mode: str = "lab"):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.register_buffer("d", torch.empty(0))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        _require_weights(w)
        if self.mode == "binaryconnect":
            return _ScaledSign.apply(w, torch.ones((), dtype=w.dtype))
        d = self.d if (self.mode == "lab" and self.d.shape == w.shape) else None
        alpha, _ = lab_binarize(w.detach(), d)
        return _ScaledSign.apply(w, alpha)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def update_curvature(model: nn.Module, optimizer: torch.optim.Adam) -> None:
    """Copy Adam's :func:`adam_curvature` of each quantized weight into its :class:`LABWeight`'s ``d``."""
    require_module(model)
    for module in model.modules():
        quantizer = getattr(module, "weight_quantizer", None)
        if isinstance(quantizer, LABWeight) and quantizer.mode == "lab":
            d = adam_curvature(optimizer, module.weight)
            if d is not None:
                quantizer.d = d.detach().clone()

