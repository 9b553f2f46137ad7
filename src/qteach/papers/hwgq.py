r"""Half-wave Gaussian quantization (HWGQ): low-bit ReLU activations fitted to the statistics batch norm creates.

Cai, He, Sun and Vasconcelos quantize the *activations* of a network with binary weights. Their observation: the
input of a ReLU after batch normalization is close to a unit Gaussian, in every layer and at every training
step, so the ReLU output is a *half-wave* Gaussian: half of the values are exactly 0, the other half follow the
half-normal density :math:`p(x) = 2\varphi(x)`, :math:`x > 0`. One quantizer, computed once offline, then fits
every layer.

**Forward: the half-wave Gaussian quantizer** (:func:`hwgq`). With positive levels :math:`q_1 < \dots < q_m`,

.. math::
    Q(x) = \begin{cases} q_i & x \in (t_i, t_{i+1}] \\ 0 & x \le 0 \end{cases}, \qquad
    t_1 = 0,\; t_{m+1} = \infty ,

and the levels minimise the mean squared error under the half-normal density,
:math:`Q^* = \arg\min_Q \int_0^\infty p(x)\,(Q(x) - x)^2\,dx`. That is a classical Lloyd–Max problem: thresholds
halfway between levels, levels at the conditional means of their intervals (:func:`lloyd_max_half_normal`, with
the closed-form moments of the Gaussian; :func:`lloyd_max_samples` runs the same iteration on data). For cheap
arithmetic the paper also uses a *uniform* quantizer, :math:`q_i = i\Delta`, with the :math:`\Delta` that
minimises the same error (:func:`optimal_uniform_step`). Note that zero is reserved for :math:`x \le 0`: any
positive input, however small, goes to :math:`q_1` (the official layer does the same).

**Backward: a piecewise-linear stand-in for the staircase** (:class:`HWGQ`, ``backward=``). The staircase has zero
derivative almost everywhere, so the backward pass uses the derivative of a function close to it:

- ``"relu"``, the vanilla ReLU: :math:`1[x > 0]`. It mismatches the forward pass for large :math:`x`, where the
  quantizer saturates at :math:`q_m` but the ReLU keeps growing;
- ``"clipped"``, the clipped ReLU :math:`\min(\max(x, 0), q_m)`: derivative :math:`1[0 < x \le q_m]`;
- ``"log_tailed"``, the log-tailed ReLU: :math:`x` on :math:`(0, q_m]` and :math:`q_m + \log(x - \tau)` above,
  :math:`\tau = q_m - 1`, whose derivative :math:`1/(x - \tau)` decays instead of vanishing.

**What comes from where.** The forward quantizer, its optimality criterion and the three backward rules are the
paper's; its equation and section numbers could not be checked for this book, so none is cited, and the exact
form of the log-tailed ReLU (which is not in the official code) is written as described above without that
check. The official Caffe code (``zhaoweicai/hwgq``, ``QuantLayer``) fixes the details: the forward pass
maps :math:`x \le 0` to 0 and every positive :math:`x` to the first level whose threshold (the midpoint to the next
level) it does not exceed; the uniform 2-bit quantizer used in its training scripts has levels
:math:`\{0.538, 1.076, 1.614\}` (:data:`OFFICIAL_UNIFORM_2BIT`) and the clipped backward pass clips at
:math:`q_m = 1.614`; its 2-bit *non-uniform* ablation script uses the two levels :math:`\{0.453, 1.51\}`
(:data:`OFFICIAL_NONUNIFORM_2LEVEL`). The log-tailed ReLU is not in that code.

References:

- Z. Cai, X. He, J. Sun, N. Vasconcelos, *Deep Learning with Low Precision by Half-wave Gaussian Quantization*,
  CVPR 2017, arXiv:1702.00953.
- Official code: https://github.com/zhaoweicai/hwgq (``src/caffe/layers/quant_layer.cpp``, ``examples/``).
- J. Max, *Quantizing for minimum distortion*, IRE Trans. Information Theory, 1960; S. Lloyd, *Least squares
  quantization in PCM*, 1957/1982.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

from qteach._validate import require_bits, require_float_tensor, require_int, require_no_nan, require_tensor

__all__ = [
    "BACKWARD_MODES",
    "OFFICIAL_UNIFORM_2BIT",
    "OFFICIAL_NONUNIFORM_2LEVEL",
    "half_wave_mse",
    "lloyd_max_half_normal",
    "lloyd_max_samples",
    "optimal_uniform_step",
    "uniform_levels",
    "thresholds",
    "hwgq",
    "backward_proxy",
    "proxy_gradient",
    "HWGQ",
]

BACKWARD_MODES = ("relu", "clipped", "log_tailed")
"""The backward approximations of the paper: vanilla ReLU, clipped ReLU, log-tailed ReLU."""

OFFICIAL_UNIFORM_2BIT = (0.538, 1.076, 1.614)
"""Positive levels of the uniform 2-bit HWGQ in the official training scripts (``centers``, ``clip_thr: 1.614``)."""

OFFICIAL_NONUNIFORM_2LEVEL = (0.453, 1.51)
"""Positive levels of the non-uniform ablation script ``alex-hwgq-2n-clip-step-160k`` of the official code."""

_SQRT_2PI = math.sqrt(2 * math.pi)


# ------------------------------------------------------------------------------------ levels and their error

def _require_levels(levels, name: str = "levels") -> torch.Tensor:
    if isinstance(levels, (list, tuple)):
        levels = torch.tensor(levels, dtype=torch.float64)
    require_tensor(levels, name)
    if not levels.is_floating_point() or levels.dim() != 1 or levels.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D float tensor (or a list) of positive levels")
    if not bool(torch.isfinite(levels).all()) or bool((levels <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0")
    if levels.numel() > 1 and not bool((levels[1:] > levels[:-1]).all()):
        raise ValueError(f"{name} must be strictly increasing")
    return levels


def thresholds(levels) -> torch.Tensor:
    r"""The thresholds :math:`t_1 = 0, t_i = (q_{i-1} + q_i)/2, t_{m+1} = \infty` of a set of positive levels
    (length :math:`m + 1`)."""
    levels = _require_levels(levels)
    mids = (levels[1:] + levels[:-1]) / 2
    return torch.cat([levels.new_zeros(1), mids, levels.new_full((1,), math.inf)])


def _pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isinf(x), torch.zeros_like(x), torch.exp(-x * x / 2) / _SQRT_2PI)


def _interval_moments(a: torch.Tensor, b: torch.Tensor):
    r"""Mass, first and second moment of :math:`N(0, 1)` restricted to :math:`(a, b]`, :math:`0 \le a < b \le \infty`
    (times 1 here; the half-normal density doubles them)."""
    mass = torch.special.ndtr(b) - torch.special.ndtr(a)
    first = _pdf(a) - _pdf(b)
    b_pdf = torch.where(torch.isinf(b), torch.zeros_like(b), b * _pdf(b))
    second = a * _pdf(a) - b_pdf + mass
    return mass, first, second


def gaussian_interval_mse(lower: torch.Tensor, upper: torch.Tensor, levels: torch.Tensor) -> float:
    r""":math:`\sum_i \int_{a_i}^{b_i} (z - q_i)^2 \varphi(z)\,dz` for :math:`z \sim N(0, 1)`, in closed form: the
    error of a quantizer that sends :math:`(a_i, b_i]` (``lower``, ``upper``, :math:`0 \le a_i \le b_i \le \infty`)
    to the level :math:`q_i` (float64 tensors of one length)."""
    mass, first, second = _interval_moments(lower, upper)
    return float((second - 2 * levels * first + levels**2 * mass).sum())


def half_wave_mse(levels) -> float:
    r"""The mean squared error :math:`E[(Q(x) - x)^2]` of :func:`hwgq` with ``levels`` for :math:`x = \max(z, 0)`,
    :math:`z \sim N(0, 1)`, in closed form (the zeros cost nothing, so this is half of the half-normal error)."""
    levels = _require_levels(levels).to(torch.float64)
    t = thresholds(levels)
    return gaussian_interval_mse(t[:-1], t[1:], levels)


def lloyd_max_half_normal(num_levels: int, iterations: int = 500) -> torch.Tensor:
    r"""The Lloyd–Max (minimum mean squared error) positive levels for the half-normal density (float64).

    .. math::
        t_i = \frac{q_{i-1} + q_i}{2}, \qquad
        q_i = E[x \mid t_i < x \le t_{i+1}] = \frac{\varphi(t_i) - \varphi(t_{i+1})}{\Phi(t_{i+1}) - \Phi(t_i)}

    iterated from evenly spaced levels, with :math:`t_1 = 0` fixed. The result equals the positive half of Max's
    optimal :math:`2m`-level Gaussian quantizer (by symmetry); e.g. :math:`m = 2` gives :math:`\{0.4528, 1.510\}`,
    the two levels of the official non-uniform script.
    """
    m = require_int(num_levels, "num_levels", minimum=1, maximum=255)
    iterations = require_int(iterations, "iterations", minimum=1)
    levels = torch.linspace(0.5, 2.5, m, dtype=torch.float64) if m > 1 else torch.tensor([0.8], dtype=torch.float64)
    for _ in range(iterations):
        t = thresholds(levels)
        mass, first, _ = _interval_moments(t[:-1], t[1:])
        new = first / mass
        if bool(torch.allclose(new, levels, rtol=0, atol=1e-13)):
            return new
        levels = new
    return levels


def lloyd_max_samples(x: torch.Tensor, num_levels: int, iterations: int = 100) -> torch.Tensor:
    r"""Lloyd's algorithm on data: the same iteration as :func:`lloyd_max_half_normal` with the conditional means
    taken over the positive entries of ``x`` (1-D k-means with :math:`t_1 = 0`). Returns float64 levels.

    The paper's argument is that batch-normalized pre-activations are close to :math:`N(0, 1)`, so this on the
    ReLU outputs of a real layer should land near the analytic levels.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    m = require_int(num_levels, "num_levels", minimum=1, maximum=255)
    iterations = require_int(iterations, "iterations", minimum=1)
    positive = x.detach().flatten().to(torch.float64)
    positive = positive[positive > 0]
    if positive.numel() < m:
        raise ValueError(f"x must have at least num_levels={m} positive entries, got {positive.numel()}")
    levels = torch.quantile(positive, (torch.arange(m, dtype=torch.float64) + 0.5) / m)
    for _ in range(iterations):
        t = thresholds(levels) if bool((levels[1:] > levels[:-1]).all()) else None
        if t is None:
            raise ValueError("x has too few distinct positive values for num_levels levels")
        index = torch.searchsorted(t[1:-1].contiguous(), positive)
        sums = torch.zeros(m, dtype=torch.float64).index_add_(0, index, positive)
        counts = torch.zeros(m, dtype=torch.float64).index_add_(0, index, torch.ones_like(positive))
        new = torch.where(counts > 0, sums / counts.clamp(min=1), levels)
        if bool(torch.allclose(new, levels, rtol=0, atol=1e-12)):
            return new
        levels = new
    return levels


def golden_section_minimum(f, lo: float = 1e-3, hi: float = 4.0, iterations: int = 200) -> float:
    """The minimiser of a unimodal ``f`` on ``[lo, hi]`` by golden-section search (one new value per step)."""
    golden = (math.sqrt(5) - 1) / 2
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - golden * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = f(b)
    return (lo + hi) / 2


@lru_cache(maxsize=None)
def _uniform_step(num_levels: int) -> float:
    return golden_section_minimum(
        lambda step: half_wave_mse(torch.arange(1, num_levels + 1, dtype=torch.float64) * step))


def optimal_uniform_step(bits: int) -> float:
    r"""The step :math:`\Delta^*` of the best *uniform* HWGQ with :math:`2^b - 1` positive levels
    :math:`q_i = i\Delta`: the minimiser of :func:`half_wave_mse`, found by golden-section search.
    For 2 bits it is 0.538, the official code's value (:data:`OFFICIAL_UNIFORM_2BIT`)."""
    return _uniform_step(2 ** require_bits(bits) - 1)


def uniform_levels(bits: int, step: float | None = None) -> torch.Tensor:
    r"""Uniform positive levels :math:`\Delta, 2\Delta, \dots, (2^b - 1)\Delta` (float64); ``step`` defaults to
    :func:`optimal_uniform_step`."""
    bits = require_bits(bits)
    step = optimal_uniform_step(bits) if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < math.inf:
        raise ValueError(f"step must be a positive number, got {step!r}")
    return torch.arange(1, 2**bits, dtype=torch.float64) * float(step)


# ------------------------------------------------------------------------------------------ the quantizer

def hwgq(x: torch.Tensor, levels) -> torch.Tensor:
    r"""The half-wave Gaussian quantizer :math:`Q(x)`: 0 for :math:`x \le 0`, else :math:`q_i` for
    :math:`x \in (t_i, t_{i+1}]` (official semantics: the first level whose upper threshold :math:`x` does not
    exceed). Forward only; :class:`HWGQ` adds the backward pass. Returns ``x``'s dtype."""
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    levels = _require_levels(levels).to(device=x.device, dtype=x.dtype)
    inner = thresholds(levels)[1:-1].contiguous()
    index = torch.searchsorted(inner, x.detach().contiguous())
    return torch.where(x > 0, levels[index], torch.zeros_like(x))


def _require_mode(mode) -> str:
    if mode not in BACKWARD_MODES:
        raise ValueError(f"backward must be one of {BACKWARD_MODES}, got {mode!r}")
    return mode


def backward_proxy(x: torch.Tensor, mode: str, q_max: float) -> torch.Tensor:
    r"""The function whose derivative the backward pass uses (for plots): ReLU, clipped ReLU
    :math:`\min(\max(x, 0), q_m)`, or log-tailed ReLU (:math:`x` on :math:`(0, q_m]`, :math:`q_m + \log(x - \tau)`
    above, :math:`\tau = q_m - 1`)."""
    require_float_tensor(x, "x")
    _require_mode(mode)
    if isinstance(q_max, bool) or not isinstance(q_max, (int, float)) or not q_max > 0:
        raise ValueError(f"q_max must be a number > 0, got {q_max!r}")
    relu = x.clamp(min=0)
    if mode == "relu":
        return relu
    if mode == "clipped":
        return relu.clamp(max=q_max)
    tau = q_max - 1.0
    tail = q_max + torch.log((x - tau).clamp(min=1e-12))
    return torch.where(x > q_max, tail, relu)


def proxy_gradient(x: torch.Tensor, mode: str, q_max: float) -> torch.Tensor:
    r"""The backward derivative :math:`\partial \tilde{Q} / \partial x` of each mode:

    .. math::
        \text{relu: } 1[x > 0], \qquad \text{clipped: } 1[0 < x \le q_m], \qquad
        \text{log-tailed: } \begin{cases} 1 & 0 < x \le q_m \\ \frac{1}{x - \tau} & x > q_m \\ 0 & x \le 0
        \end{cases}, \ \tau = q_m - 1 .
    """
    require_float_tensor(x, "x")
    _require_mode(mode)
    if isinstance(q_max, bool) or not isinstance(q_max, (int, float)) or not q_max > 0:
        raise ValueError(f"q_max must be a number > 0, got {q_max!r}")
    positive = (x > 0).to(x.dtype)
    if mode == "relu":
        return positive
    inside = ((x > 0) & (x <= q_max)).to(x.dtype)
    if mode == "clipped":
        return inside
    tau = q_max - 1.0
    return torch.where(x > q_max, 1.0 / (x - tau).clamp(min=1.0), inside)


class _HWGQFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, levels, mode, q_max):
        ctx.save_for_backward(x)
        ctx.mode, ctx.q_max = mode, q_max
        return hwgq(x, levels)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * proxy_gradient(x, ctx.mode, ctx.q_max), None, None, None


class HWGQ(nn.Module):
    r"""The HWGQ activation quantizer (it replaces the ReLU): forward :func:`hwgq`, backward one of the paper's
    piecewise approximations (:func:`proxy_gradient`). Use it as ``input_quantizer=`` of the layer that follows
    a batch norm, or as the activation itself.

    .. math:: y = Q(x), \qquad \frac{\partial c}{\partial x} = \frac{\partial c}{\partial y}\,
        \tilde{Q}'(x)

    ``bits`` sets :math:`m = 2^b - 1` positive levels (with 0, :math:`2^b` values, ``precision = bits``).
    ``uniform=True`` (default, as in the official training scripts) uses :math:`q_i = i\Delta^*`
    (:func:`uniform_levels`; 0.539, 1.078, 1.616 for 2 bits, where the scripts write 0.538, 1.076, 1.614);
    ``uniform=False`` the Lloyd–Max levels
    (:func:`lloyd_max_half_normal`). ``levels`` overrides both. ``backward`` is ``"clipped"`` (default, the
    official scripts' choice), ``"relu"`` or ``"log_tailed"``; the clip is at the largest level :math:`q_m`.
    """

    def __init__(self, bits: int = 2, backward: str = "clipped", uniform: bool = True, levels=None):
        bits = require_bits(bits)
        if bits > 8:
            raise ValueError(f"bits must be <= 8 for HWGQ, got {bits}")
        backward = _require_mode(backward)
        if not isinstance(uniform, bool):
            raise TypeError(f"uniform must be a bool, got {type(uniform).__name__}")
        if levels is not None and _require_levels(levels).numel() > 2**bits - 1:
            raise ValueError(f"{_require_levels(levels).numel()} positive levels do not fit in {bits} bits "
                             f"(at most {2**bits - 1})")
        super().__init__()
        self.precision = bits
        self.backward_mode = backward
        self.uniform = uniform
        if levels is None:
            levels = uniform_levels(bits) if uniform else lloyd_max_half_normal(2**bits - 1)
        self.register_buffer("levels", _require_levels(levels).to(torch.float32))

    @property
    def q_max(self) -> float:
        return float(self.levels[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _HWGQFunction.apply(x, self.levels, self.backward_mode, self.q_max)

    def extra_repr(self) -> str:
        levels = ", ".join(f"{v:.3f}" for v in self.levels.tolist())
        return f"bits={self.precision}, backward={self.backward_mode!r}, levels=({levels})"
