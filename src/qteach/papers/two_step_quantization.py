r"""Two-Step Quantization (TSQ): learn the low-bit activation codes first, then fit low-bit weights to them.

Wang, Hu, Zhang, Zhang, Liu and Cheng split the training of a network with low-bit activations *and* low-bit
weights into two problems that are easier than the joint one:

1. **Code learning.** Train the network with full-precision weights and *sparse-quantized* activations
   (:func:`sparse_quantize`, :class:`SparseActivationQuantizer`): activations at or below a threshold
   :math:`\epsilon` become 0, the rest go to a uniform grid :math:`\{\delta, 2\delta, \dots, (2^b - 1)\delta\}`.
   The activations of this network are the *codes*.
2. **Transformation function learning.** Layer by layer, with the codes :math:`X` of the layer's input and the
   outputs of the step-1 layer as targets, fit ternary weights :math:`\hat w \in \{-1, 0, +1\}^n` and one scale
   :math:`\alpha` per output channel by a non-linear least-squares problem solved iteratively
   (:func:`fit_ternary_layer`: :func:`solve_alpha`, :func:`solve_ternary`, :func:`solve_auxiliary`).

What was read, and what is reconstructed. The paper's PDF (CVPR 2018, CVF open access) could not be read for this
book; its abstract (paperswithcode, bohrium.dp.tech) says the second step "can be formulated as a non-linear least
square regression problem with low-bit constraints, which can be solved efficiently in an iterative manner". The
official demo (``peiswang/Two-Step-Quantization-AlexNet``) ships only the inference-time activation layer
(``relu2b_layer.cpp``, the ``ReLU2B`` forward and backward) and an AlexNet prototxt with its constants
(``thresh: 0.32``, ``delta: 0.6487``): :func:`sparse_quantize` and :func:`sparse_quantize_ste` transcribe that layer,
and :func:`optimal_step` reproduces ``delta = 0.6487`` from ``thresh = 0.32`` as the mean-square-optimal step for
unit-Gaussian inputs. The step-2 objective and its alternating solution below are this book's reconstruction from
the abstract (ReLU as the non-linearity, an auxiliary variable :math:`z` with weight :math:`\lambda`, closed-form
:math:`\alpha`, coordinate-wise ternary updates); no equation numbers of the paper are quoted because they could
not be checked.

References:

- Wang, Hu, Zhang, Zhang, Liu, Cheng, *Two-Step Quantization for Low-bit Neural Networks*, CVPR 2018.
- Official demo code: https://github.com/peiswang/Two-Step-Quantization-AlexNet (``relu2b_layer.cpp``,
  ``test_2_ternary.prototxt``).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_bits, require_float_tensor, require_int, require_no_nan
from qteach.papers import hwgq
from qteach.papers import ternary_weight_networks as twn

__all__ = [
    "OFFICIAL_THRESHOLD",
    "OFFICIAL_STEP",
    "sparse_quantize",
    "sparse_quantize_ste",
    "SparseActivationQuantizer",
    "gaussian_quantization_error",
    "optimal_step",
    "solve_alpha",
    "solve_ternary",
    "linear_objective",
    "solve_auxiliary",
    "relu_objective",
    "fit_ternary_layer",
    "LayerFit",
    "mlp",
    "two_step",
]

OFFICIAL_THRESHOLD = 0.32
"""The sparse threshold :math:`\\epsilon` of every ``ReLU2B`` layer in the official AlexNet prototxt."""
OFFICIAL_STEP = 0.6487
"""The step :math:`\\delta` of every ``ReLU2B`` layer in the official AlexNet prototxt (2-bit activations)."""


def _require_number(value, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


def _require_matrix(value, name: str) -> torch.Tensor:
    require_float_tensor(value, name)
    if value.dim() != 2 or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-d tensor, got shape {tuple(value.shape)}")
    require_no_nan(value, name)
    return value


# --------------------------------------------------------------------------------------- step 1: the codes


def sparse_quantize(x: torch.Tensor, threshold: float = OFFICIAL_THRESHOLD, step: float = OFFICIAL_STEP,
                    bits: int = 2) -> torch.Tensor:
    r"""The sparse quantizer :math:`Q_\epsilon` of step 1 (forward pass), a transcription of the official ``ReLU2B``.

    .. math::
        Q_\epsilon(x) = \begin{cases} 0 & x \le \epsilon \\
        k\,\delta & (k - \tfrac12)\delta < x \le (k + \tfrac12)\delta,\ k = 1, \dots, 2^b - 1
        \ (\text{the first and last bins open to } \epsilon \text{ and } +\infty) \end{cases}

    Everything at or below the threshold :math:`\epsilon` is 0 (small activations are *ignored*, hence
    "sparse"); everything above it goes to the nearest of the :math:`2^b - 1` non-zero levels
    :math:`\delta, 2\delta, \dots`, so a value just above :math:`\epsilon` becomes :math:`\delta`
    even when it is nearer to 0. Boundaries go down, as in ``relu2b_layer.cpp`` lines 18-26
    (``<= th``, ``<= 1.5*d``, ``<= 2.5*d``): :math:`x = 1.5\delta` gives :math:`\delta`. With ``bits=2``,
    :math:`\epsilon = 0.32`, :math:`\delta = 0.6487` this is the layer of the official prototxt.
    """
    require_float_tensor(x, "x")
    threshold = _require_number(threshold, "threshold")
    step = _require_number(step, "step", strict=True)
    bits = require_bits(bits)
    levels = 2**bits - 1
    code = torch.ones_like(x)
    for k in range(1, levels):  # one comparison per boundary, exactly as the C++ if/else chain
        code = code + (x > (k + 0.5) * step).to(x.dtype)
    return torch.where(x <= threshold, torch.zeros_like(x), code * step)


def sparse_quantize_ste(x: torch.Tensor, threshold: float = OFFICIAL_THRESHOLD, step: float = OFFICIAL_STEP,
                        bits: int = 2) -> torch.Tensor:
    r""":func:`sparse_quantize` with the official backward pass (``relu2b_layer.cpp``, ``Backward_cpu``, line 41).

    .. math:: \frac{\partial c}{\partial x} = \frac{\partial c}{\partial Q_\epsilon(x)}\;
        \mathbb{1}\big[\,0 < x < (2^b - 1)\,\delta\,\big]

    The gradient passes where :math:`0 < x <` the top level (``(bottom_data[i] > 0) * (bottom_data[i] < 3*d)``
    for 2 bits), *including* the sparse interval :math:`(0, \epsilon]` whose output is 0: a clipped-ReLU
    straight-through estimator, as in HWGQ.
    """
    with torch.no_grad():
        quantized = sparse_quantize(x, threshold, step, bits)
        top = (2**bits - 1) * step
        mask = ((x > 0) & (x < top)).to(x.dtype)
    return binary.straight_through(x * mask, quantized) if x.requires_grad else quantized


class SparseActivationQuantizer(nn.Module):
    r"""Step 1's activation function: :func:`sparse_quantize_ste` as a module (``precision = bits``).

    Put it after a layer whose outputs are roughly unit Gaussian (after batch normalisation, as the official
    prototxt does: ``conv -> BatchNorm -> (pool) -> ReLU2B``); :func:`optimal_step` gives the step for a threshold.
    """

    def __init__(self, threshold: float = OFFICIAL_THRESHOLD, step: float | None = None, bits: int = 2):
        threshold = _require_number(threshold, "threshold")
        bits = require_bits(bits)
        step = optimal_step(threshold, bits) if step is None else _require_number(step, "step", strict=True)
        super().__init__()
        self.threshold, self.step, self.bits = threshold, step, bits
        self.precision = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_quantize_ste(x, self.threshold, self.step, self.bits)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, step={self.step:.4f}, bits={self.bits}"


def gaussian_quantization_error(threshold: float, step: float, bits: int = 2) -> float:
    r"""Mean squared error of :math:`Q_\epsilon` on the *kept* values of a unit Gaussian, in closed form.

    .. math:: E(\delta) = \sum_{k=1}^{2^b-1} \int_{\max(\epsilon,(k-\frac12)\delta)}^{(k+\frac12)\delta}
        (x - k\delta)^2 \varphi(x)\,dx \quad (\text{the last upper limit } +\infty)

    The values at or below :math:`\epsilon` are left out: they are zero by design, whatever :math:`\delta`.
    Each integral is in closed form (:func:`qteach.papers.hwgq.gaussian_interval_mse`), :math:`q = k\delta`.
    """
    threshold = _require_number(threshold, "threshold")
    step = _require_number(step, "step", strict=True)
    k = torch.arange(1, 2**require_bits(bits), dtype=torch.float64)
    lower = torch.clamp((k - 0.5) * step, min=threshold)
    lower[0] = threshold
    upper = torch.cat([(k[:-1] + 0.5) * step, torch.tensor([math.inf], dtype=torch.float64)])
    upper = torch.maximum(upper, lower)  # an interval below the threshold is empty
    return hwgq.gaussian_interval_mse(lower, upper, k * step)


def optimal_step(threshold: float = OFFICIAL_THRESHOLD, bits: int = 2) -> float:
    r"""The step :math:`\delta^* = \arg\min_\delta E(\delta)` of :func:`gaussian_quantization_error`.

    Golden-section search on :math:`(0, 4]` (:func:`qteach.papers.hwgq.golden_section_minimum`). For
    :math:`\epsilon = 0.32`, 2 bits it gives 0.6488, the official
    prototxt's ``delta: 0.6487``; for :math:`\epsilon = 0` it gives 0.5388, the HWGQ 2-bit step.
    """
    threshold = _require_number(threshold, "threshold")
    bits = require_bits(bits)
    return hwgq.golden_section_minimum(lambda step: gaussian_quantization_error(threshold, step, bits))


# ------------------------------------------------------------------------ step 2: the transformation function


def linear_objective(x: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    r"""Per output channel :math:`i`: :math:`\lVert z_i - \alpha_i X \hat w_i \rVert^2` (a tensor of length m).

    ``x`` is (N, n) (the input codes), ``z`` (N, m) the targets, ``alpha`` (m,), ``w_t`` (m, n) ternary.
    """
    return ((z - (x @ w_t.T) * alpha) ** 2).sum(0)


def solve_alpha(x: torch.Tensor, z: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    r"""The best scale for fixed ternary weights, one per output channel (closed form).

    .. math:: \alpha_i^* = \arg\min_\alpha \lVert z_i - \alpha X \hat w_i \rVert^2
        = \frac{z_i^\top X \hat w_i}{\lVert X \hat w_i \rVert^2}

    A channel with :math:`X \hat w_i = 0` gets :math:`\alpha_i = 0`. The result may be negative; the ternary
    step absorbs the sign (:math:`\alpha \hat w = (-\alpha)(-\hat w)`), see :func:`fit_ternary_layer`.
    """
    _require_matrix(x, "x")
    _require_matrix(z, "z")
    _require_matrix(w_t, "w_t")
    if x.shape[0] != z.shape[0] or x.shape[1] != w_t.shape[1] or z.shape[1] != w_t.shape[0]:
        raise ValueError(f"shapes do not fit: x {tuple(x.shape)}, z {tuple(z.shape)}, w_t {tuple(w_t.shape)} "
                         "(expected (N, n), (N, m), (m, n))")
    v = x @ w_t.T                               # (N, m): X w_i for every channel
    num, den = (z * v).sum(0), (v * v).sum(0)
    return torch.where(den > 0, num / den.clamp(min=torch.finfo(den.dtype).tiny), torch.zeros_like(num))


def solve_ternary(x: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, w_t: torch.Tensor,
                  sweeps: int = 2) -> torch.Tensor:
    r"""Ternary weights for a fixed scale by exact coordinate descent (every channel at once).

    .. math:: \hat w_{ij} \leftarrow \arg\min_{t \in \{-1,0,1\}} \lVert r_{ij} - \alpha_i t\, x_j \rVert^2
        = \operatorname{clip}\!\Big(\operatorname{round}\frac{x_j^\top r_{ij}}{\alpha_i \lVert x_j\rVert^2},
        -1, 1\Big), \quad r_{ij} = z_i - \alpha_i \sum_{k \ne j} \hat w_{ik} x_k

    In Gram form (:math:`G = X^\top X`, :math:`B = X^\top Z`): :math:`x_j^\top r_{ij} = B_{ji} - \alpha_i
    (G \hat w_i)_j + \alpha_i G_{jj} \hat w_{ij}`. Each update is the exact minimiser over one coordinate, so
    the objective never increases. Columns of X that are all zero keep :math:`\hat w_{ij} = 0`.
    """
    _require_matrix(x, "x")
    _require_matrix(z, "z")
    _require_matrix(w_t, "w_t")
    sweeps = require_int(sweeps, "sweeps", minimum=1)
    gram, b = x.T @ x, x.T @ z                  # (n, n), (n, m)
    w = w_t.clone()
    diag = gram.diagonal()
    a = alpha.reshape(-1)
    safe = torch.where(a != 0, a, torch.ones_like(a))
    for _ in range(sweeps):
        for j in range(x.shape[1]):
            if diag[j] <= 0:
                w[:, j] = 0
                continue
            c = b[j] - a * (w @ gram[j]) + a * diag[j] * w[:, j]        # x_j^T r_ij for every channel i
            t = torch.round(c / (safe * diag[j])).clamp(-1, 1)
            w[:, j] = torch.where(a != 0, t, torch.zeros_like(t))
    return w


def solve_auxiliary(y: torch.Tensor, v: torch.Tensor, lam: float) -> torch.Tensor:
    r"""The auxiliary variable of the non-linear problem, element by element (closed form).

    .. math:: z^* = \arg\min_z\, (y - \operatorname{relu}(z))^2 + \lambda (z - v)^2

    Two candidates: on :math:`z \ge 0` the minimiser is :math:`\max(0, \frac{y + \lambda v}{1 + \lambda})`;
    on :math:`z < 0` it is :math:`\min(v, 0)` (cost :math:`y^2 + \lambda(\min(v,0) - v)^2`). The cheaper wins
    (ties to the non-negative one). :math:`y` is the target after the ReLU, :math:`v = \alpha X \hat w` the current
    fit before it.
    """
    require_float_tensor(y, "y")
    require_float_tensor(v, "v")
    lam = _require_number(lam, "lam", strict=True)
    if y.shape != v.shape:
        raise ValueError(f"y and v must have the same shape, got {tuple(y.shape)} and {tuple(v.shape)}")
    z_pos = ((y + lam * v) / (1 + lam)).clamp(min=0)
    z_neg = v.clamp(max=0)
    cost = lambda z: (y - z.clamp(min=0)) ** 2 + lam * (z - v) ** 2  # noqa: E731
    return torch.where(cost(z_pos) <= cost(z_neg), z_pos, z_neg)


def relu_objective(y, z, v, lam: float) -> torch.Tensor:
    r""":math:`\lVert y - \operatorname{relu}(z) \rVert^2 + \lambda \lVert z - v \rVert^2`, the relaxed objective."""
    return ((y - z.clamp(min=0)) ** 2).sum() + lam * ((z - v) ** 2).sum()


class LayerFit:
    """What :func:`fit_ternary_layer` returns: ``w_t`` (m, n) in {-1, 0, 1}, ``alpha`` (m,) >= 0, and
    ``history``, the linear objective sum_i ||z_i - alpha_i X w_i||^2 after each iteration."""

    def __init__(self, w_t: torch.Tensor, alpha: torch.Tensor, history: list[float]):
        self.w_t, self.alpha, self.history = w_t, alpha, history

    @property
    def weight(self) -> torch.Tensor:
        """The fitted low-bit weight matrix :math:`\\alpha_i \\hat w_i` (m, n)."""
        return self.alpha[:, None] * self.w_t


def fit_ternary_layer(x: torch.Tensor, target: torch.Tensor, w_init: torch.Tensor, iters: int = 10,
                      lam: float | None = None, gain=None, shift=None, sweeps: int = 2) -> LayerFit:
    r"""Step 2 for one layer: fit :math:`\alpha_i \hat w_i` to map the input codes to the step-1 targets.

    ``x`` (N, n): the layer's input codes from the step-1 network; ``target`` (N, m): the step-1 layer's outputs
    :math:`z^* = X W^\top` (before any normalisation); ``w_init`` (m, n): the step-1 float weights, ternarized with
    TWN's rule per channel to start (:func:`qteach.papers.ternary_weight_networks.ternary_weights`).

    ``lam=None`` solves the linear problem :math:`\min \sum_i \lVert z^*_i - \alpha_i X \hat w_i \rVert^2` by
    alternating :func:`solve_alpha` and :func:`solve_ternary`. With ``lam`` set, the non-linear problem

    .. math:: \min_{\alpha, \hat w, z}\; \lVert y - \operatorname{relu}(z) \rVert^2
        + \lambda \lVert z - (g \odot \alpha X \hat w + s) \rVert^2, \qquad y = \operatorname{relu}(g \odot z^* + s)

    where :math:`g, s` (``gain``, ``shift``, per channel; default 1 and 0) are the eval-mode batch norm that
    follows the layer: each iteration solves :math:`z` (:func:`solve_auxiliary`), maps it back to the layer's
    output space, :math:`(z - s)/g`, and refits :math:`\alpha, \hat w` to that. Only outputs that end up
    above the ReLU's zero have to be matched, which is the point of the non-linear formulation. A negative
    :math:`\alpha_i` is made positive by flipping :math:`\hat w_i`.
    """
    _require_matrix(x, "x")
    _require_matrix(target, "target")
    _require_matrix(w_init, "w_init")
    if x.shape[0] != target.shape[0] or w_init.shape != (target.shape[1], x.shape[1]):
        raise ValueError(f"shapes do not fit: x {tuple(x.shape)}, target {tuple(target.shape)}, w_init "
                         f"{tuple(w_init.shape)} (expected (N, n), (N, m), (m, n))")
    iters = require_int(iters, "iters", minimum=1)
    if lam is not None:
        lam = _require_number(lam, "lam", strict=True)
    m = target.shape[1]
    gain = torch.ones(m) if gain is None else torch.as_tensor(gain, dtype=x.dtype).reshape(-1)
    shift = torch.zeros(m) if shift is None else torch.as_tensor(shift, dtype=x.dtype).reshape(-1)
    if gain.numel() != m or shift.numel() != m or bool((gain == 0).any()):
        raise ValueError(f"gain and shift must have {m} entries, gain non-zero")
    with torch.no_grad():
        w_t, alpha, _ = twn.ternary_weights(w_init, per_channel=True)
        w_t, alpha = w_t.clone(), alpha.reshape(-1).clone()
        y = (gain * target + shift).clamp(min=0)
        z = target
        history = []
        for _ in range(iters):
            if lam is not None:
                v = gain * ((x @ w_t.T) * alpha) + shift
                z = (solve_auxiliary(y, v, lam) - shift) / gain
            alpha = solve_alpha(x, z, w_t)
            w_t = solve_ternary(x, z, alpha, w_t, sweeps)
            alpha = solve_alpha(x, z, w_t)
            flip = alpha < 0
            alpha, w_t = alpha.abs(), torch.where(flip[:, None], -w_t, w_t)
            history.append(float(linear_objective(x, target, alpha, w_t).sum()))
    return LayerFit(w_t, alpha, history)


# ------------------------------------------------------------------------------------- the whole recipe (MLP)


def mlp(in_features: int, hidden: int = 64, classes: int = 10, weight_quantizer=None, threshold: float =
        OFFICIAL_THRESHOLD, bits: int = 2) -> nn.Sequential:
    r"""The experiment's network: ``[QuantLinear -> BatchNorm1d -> SparseActivationQuantizer] x 2 -> QuantLinear``.

    The linear layers have no bias (the batch norm after them has one), as in the official prototxt; the last
    layer has a float bias. ``weight_quantizer=None`` gives float weights (TSQ's step 1); a quantizer module
    (e.g. TWN's) makes every linear layer use it (the end-to-end baseline). A fresh quantizer per layer.
    """
    in_features = require_int(in_features, "in_features", minimum=1)
    hidden = require_int(hidden, "hidden", minimum=1)
    classes = require_int(classes, "classes", minimum=2)
    make_q = (lambda: None) if weight_quantizer is None else (lambda: _copy_module(weight_quantizer))
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for _ in range(2):
        layers += [_linear(width, hidden, False, make_q()), nn.BatchNorm1d(hidden),
                   SparseActivationQuantizer(threshold, bits=bits)]
        width = hidden
    layers.append(_linear(width, classes, True, make_q()))
    return nn.Sequential(*layers)


def _copy_module(module):
    import copy

    return copy.deepcopy(module)


def _linear(n_in, n_out, bias, quantizer):
    from qteach.nn import QuantLinear

    return QuantLinear(n_in, n_out, bias=bias, weight_quantizer=quantizer)


def two_step(model: nn.Sequential, x: torch.Tensor, iters: int = 10, lam: float | None = 1.0) -> list[LayerFit]:
    r"""Step 2 on a step-1 :func:`mlp`: replace every linear layer's float weight by a fitted :math:`\alpha \hat w`.

    Runs ``model`` (eval mode, no gradient) on ``x`` once to record each linear layer's input (the codes) and
    output (the target :math:`z^* = X W^\top`), all from the *step-1* network, so the layers are independent:
    that is the decoupling TSQ is after. A linear layer followed by batch norm gets the non-linear fit with that
    norm's eval-mode gain and shift (``lam``); the last layer gets the linear fit. The bias and the batch norms
    stay as they are (float). Modifies ``model`` in place and returns the fits.
    """
    from qteach.nn import QuantLinear

    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from mlp(), got {type(model).__name__}")
    require_float_tensor(x, "x")
    linears = [i for i, layer in enumerate(model) if isinstance(layer, QuantLinear)]
    if not linears:
        raise ValueError("model has no QuantLinear layer")
    model.eval()
    records = {}
    with torch.no_grad():
        h = x
        for i, layer in enumerate(model):
            if i in linears:
                inp = h.reshape(len(h), -1)
                records[i] = (inp, inp @ layer.weight.T)
            h = layer(h)
        fits = []
        for i in linears:
            inp, target = records[i]
            bn = model[i + 1] if i + 1 < len(model) and isinstance(model[i + 1], nn.BatchNorm1d) else None
            if bn is None:
                fit = fit_ternary_layer(inp, target, model[i].weight, iters=iters)
            else:
                gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                shift = bn.bias - bn.running_mean * gain
                fit = fit_ternary_layer(inp, target, model[i].weight, iters=iters, lam=lam, gain=gain,
                                        shift=shift)
            model[i].weight.copy_(fit.weight)
            model[i].weight_quantizer = None
            fits.append(fit)
    return fits
