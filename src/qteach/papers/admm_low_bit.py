r"""Extremely low-bit networks with ADMM: split the float weights from the discrete set, then alternate.

Leng, Dou, Li, Zhu and Jin (AAAI 2018) write low-bit training as a *discretely constrained* problem. Each layer
:math:`i` may only use the values of a scaled discrete set,

.. math:: \min_W f(W) \quad \text{s.t.} \quad W \in \mathcal{C} = \mathcal{C}_1 \times \dots \times
    \mathcal{C}_L, \qquad \mathcal{C}_i = \alpha_i \cdot \{0, \pm 1, \pm 2, \dots, \pm 2^N\},\ \alpha_i > 0,

with ternary weights :math:`\alpha_i\{-1, 0, +1\}` (:data:`TERNARY`), :math:`\alpha_i\{0, \pm1, \pm2\}` and
:math:`\alpha_i\{0, \pm1, \pm2, \pm4\}` (:data:`POWERS_OF_TWO`) as examples (the exact list of sets in the
paper's tables was not verified); the scale
:math:`\alpha_i` turns the finite set of points into lines through the origin (the paper's Fig. 1). With an
auxiliary copy :math:`G` of the weights and the indicator :math:`I_{\mathcal{C}}(G)` (0 on the set, :math:`+\infty`
off it) the problem becomes :math:`\min f(W) + I_{\mathcal{C}}(G)` s.t. :math:`W = G`, whose augmented Lagrangian
in scaled form (dual variable :math:`\lambda`, penalty :math:`\rho > 0`) is

.. math:: L_\rho(W, G, \lambda) = f(W) + I_{\mathcal{C}}(G) + \frac{\rho}{2}\lVert W - G + \lambda \rVert^2
    - \frac{\rho}{2}\lVert \lambda \rVert^2 .

ADMM minimises it one block at a time:

.. math:: W^{k+1} = \arg\min_W L_\rho(W, G^k, \lambda^k), \quad
    G^{k+1} = \arg\min_G L_\rho(W^{k+1}, G, \lambda^k), \quad
    \lambda^{k+1} = \lambda^k + W^{k+1} - G^{k+1}.

- **Proximal step** (:math:`W`): :math:`f(W) + \frac{\rho}{2}\lVert W - G + \lambda\rVert^2` is smooth; the
  paper takes gradient steps on it with the *extragradient* method (a predictor step, then a corrector step with
  the gradient at the predicted point), :func:`extragradient_step`, on the gradient :func:`proximal_gradient`.
- **Projection step** (:math:`G`): :math:`G^{k+1} = \Pi_{\mathcal{C}}(W^{k+1} + \lambda^k)`, the nearest point
  of the scaled set. Per layer, with :math:`V = W + \lambda`, this is :math:`\min_{\alpha, Q} \lVert V - \alpha Q
  \rVert^2` over :math:`Q \in \{0, \pm1, \dots\}^n`, which the paper solves by *alternating*: for fixed
  :math:`Q`, :math:`\alpha = V^\top Q / Q^\top Q`; for fixed :math:`\alpha`, :math:`Q = \Pi(V / \alpha)`, each
  entry rounded to its nearest level (:func:`project`).
- **Dual step** (:math:`\lambda`): :func:`dual_update`.

At the end the network uses :math:`G`, which lies in :math:`\mathcal{C}` by construction.

What this module could not check: the paper's text beyond its abstract was not available to the book's authors
when this was written, so the equations are cited by the section they belong to (objective, ADMM, proximal step,
extragradient, projection step), not by number; the paper has no official code (the catalog's code link is
Boyd's general ADMM page). Our own choices, not the paper's: the initial scale of the alternating projection
(:math:`\alpha_0 = \operatorname{mean}|V|`, or the previous :math:`\alpha`), ties between two levels going to the
smaller magnitude, how many proximal steps run between two projections (:func:`admm_fit`'s ``admm_every``), and
a fixed :math:`\rho`.

References:

- C. Leng, Z. Dou, H. Li, S. Zhu, R. Jin, *Extremely Low Bit Neural Network: Squeeze the Last Bit Out with ADMM*,
  AAAI 2018. https://arxiv.org/abs/1707.09870
- S. Boyd et al., *Distributed Optimization and Statistical Learning via the Alternating Direction Method of
  Multipliers*, 2011 (the scaled form of ADMM).
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import train
from qteach._validate import (require_float_tensor, require_int, require_module, require_no_nan,
                              require_positive_number)
from qteach.data import Split

__all__ = [
    "TERNARY",
    "BINARY",
    "POWERS_OF_TWO",
    "nearest_levels",
    "fit_scale",
    "project",
    "projection_error",
    "proximal_gradient",
    "dual_update",
    "extragradient_step",
    "ADMMState",
    "admm_fit",
]

TERNARY = (0.0, 1.0)
"""The ternary set :math:`\\alpha\\{-1, 0, +1\\}`, written as its non-negative levels."""
BINARY = (1.0,)
"""The binary set :math:`\\alpha\\{-1, +1\\}`."""
POWERS_OF_TWO = (0.0, 1.0, 2.0, 4.0)
"""The powers-of-two set :math:`\\alpha\\{0, \\pm1, \\pm2, \\pm4\\}` (the paper's "3 bits")."""


def _require_levels(levels) -> torch.Tensor:
    if not isinstance(levels, (tuple, list)) or not levels:
        raise TypeError(f"levels must be a non-empty tuple of non-negative numbers, got {levels!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in levels):
        raise ValueError(f"levels must hold non-negative numbers, got {levels!r}")
    if max(levels) <= 0:
        raise ValueError(f"levels needs at least one positive level, got {levels!r}")
    return torch.tensor(sorted(set(float(v) for v in levels)))


def _require_like(w: torch.Tensor, **others) -> None:
    require_float_tensor(w, "w")
    for name, value in others.items():
        require_float_tensor(value, name)
        if value.shape != w.shape:
            raise ValueError(f"{name} must have the shape of w {tuple(w.shape)}, got {tuple(value.shape)}")


def _require_params(params, grad_fn) -> list:
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) for p in params):
        raise TypeError("params must be a non-empty iterable of tensors")
    if not callable(grad_fn):
        raise TypeError(f"grad_fn must be callable, got {type(grad_fn).__name__}")
    return params


def nearest_levels(x: torch.Tensor, levels=TERNARY) -> torch.Tensor:
    r"""Round each entry of ``x`` to the nearest signed level :math:`q \in \{\pm \ell : \ell \in
    \text{levels}\}` (the :math:`Q`-step of the projection with :math:`x = V/\alpha`).

    The sign is kept and :math:`|x|` goes to the nearest level; a tie between two levels goes to the smaller
    magnitude (our convention). With :data:`TERNARY` this is :math:`q = \operatorname{sign}(x)\,1[|x| > 1/2]`.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    lv = _require_levels(levels).to(x.device, x.dtype)
    index = (x.abs().unsqueeze(-1) - lv).abs().argmin(dim=-1)  # argmin: the first (smallest) on a tie
    return torch.where(x < 0, -lv[index], lv[index])


def fit_scale(v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""The best scale for fixed levels: :math:`\alpha = \arg\min_\alpha \lVert V - \alpha Q\rVert^2 =
    V^\top Q / Q^\top Q` (the :math:`\alpha`-step of the projection). All-zero :math:`Q` gives 0."""
    require_float_tensor(v, "v")
    require_float_tensor(q, "q")
    if q.shape != v.shape:
        raise ValueError(f"q must have the shape of v {tuple(v.shape)}, got {tuple(q.shape)}")
    qq = (q * q).sum()
    return torch.where(qq > 0, (v * q).sum() / qq.clamp_min(1e-30), torch.zeros_like(qq))


def project(v: torch.Tensor, levels=TERNARY, alpha=None, iters: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The projection step: the nearest point :math:`\alpha Q` of the scaled set to :math:`V`, by alternating.

    .. math:: Q^{t+1} = \Pi_{\{0, \pm\ell\}}\!\big(V / \alpha^t\big), \qquad
        \alpha^{t+1} = \frac{V^\top Q^{t+1}}{Q^{t+1\top} Q^{t+1}}

    Each half-step minimises :math:`\lVert V - \alpha Q\rVert^2` over one block, so the error never grows; the
    loop stops when :math:`Q` no longer changes (a fixed point, a local minimum of the joint problem) or after
    ``iters`` rounds. ``alpha`` is the starting scale (default :math:`\operatorname{mean}|V|`). One scale for
    the whole tensor (the paper's one :math:`\alpha_i` per layer). Returns ``(alpha * Q, alpha)``.
    """
    require_float_tensor(v, "v")
    require_no_nan(v, "v")
    if v.numel() == 0:
        raise ValueError("v must not be empty")
    _require_levels(levels)
    iters = require_int(iters, "iters", minimum=1)
    a = v.abs().mean() if alpha is None else torch.as_tensor(alpha, dtype=v.dtype, device=v.device)
    if not a > 0:
        a = v.abs().max().clamp_min(1e-12)  # a dead start (alpha <= 0 or V = 0): restart from the range
    q = None
    for _ in range(iters):
        q_new = nearest_levels(v / a, levels)
        if q is not None and torch.equal(q_new, q):
            break
        q = q_new
        a_new = fit_scale(v, q)
        if not a_new > 0:  # every entry rounded to 0: keep the previous scale, the projection is 0
            break
        a = a_new
    return a * q, a


def projection_error(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert V - G\rVert^2 / \lVert V\rVert^2`, the relative squared distance to the projection."""
    require_float_tensor(v, "v")
    require_float_tensor(g, "g")
    return ((v - g) ** 2).sum() / (v ** 2).sum().clamp_min(1e-30)


def proximal_gradient(grad_f: torch.Tensor, w: torch.Tensor, g: torch.Tensor, lam: torch.Tensor,
                      rho: float) -> torch.Tensor:
    r"""Gradient of the proximal step's objective :math:`f(W) + \frac{\rho}{2}\lVert W - G + \lambda\rVert^2`:

    .. math:: \nabla_W L_\rho = \nabla f(W) + \rho\,(W - G + \lambda)
    """
    _require_like(w, grad_f=grad_f, g=g, lam=lam)
    rho = require_positive_number(rho, "rho")
    return grad_f + rho * (w - g + lam)


def dual_update(lam: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r"""The dual step of scaled ADMM: :math:`\lambda^{k+1} = \lambda^k + W^{k+1} - G^{k+1}`, the running sum of
    the constraint violations."""
    _require_like(w, lam=lam, g=g)
    return lam + w - g


def extragradient_step(params, grad_fn, lr_predict: float, lr_correct: float | None = None) -> None:
    r"""One extragradient step (Korpelevich) on ``params``, in place:

    .. math:: \bar W = W - \beta_p \nabla L(W), \qquad W \leftarrow W - \beta_c \nabla L(\bar W)

    ``grad_fn()`` returns the gradients of the objective at the current values of ``params`` (a list of
    tensors, one per parameter); ``lr_correct`` defaults to ``lr_predict``.
    """
    params = _require_params(params, grad_fn)
    lr_predict = require_positive_number(lr_predict, "lr_predict")
    lr_correct = lr_predict if lr_correct is None else require_positive_number(lr_correct, "lr_correct")
    start = [p.detach().clone() for p in params]
    grads = [grad.detach().clone() for grad in grad_fn()]
    with torch.no_grad():
        for p, grad in zip(params, grads):
            p.sub_(lr_predict * grad)                       # predictor: W_bar = W - beta_p grad(W)
    grads_bar = [grad.detach().clone() for grad in grad_fn()]
    with torch.no_grad():
        for p, w0, grad in zip(params, start, grads_bar):
            p.copy_(w0 - lr_correct * grad)                  # corrector: W - beta_c grad(W_bar)


class ADMMState:
    r"""The auxiliary variables of ADMM for a list of weight tensors (one :math:`\mathcal{C}_i` per tensor):
    :math:`G` (starts at :math:`\Pi_{\mathcal{C}}(W)`), :math:`\lambda` (starts at 0) and the scales
    :math:`\alpha`. ``project_`` is the :math:`G`-step, ``dual_`` the :math:`\lambda`-step."""

    def __init__(self, weights, levels=TERNARY, rho: float = 1e-2, iters: int = 20):
        self.weights = list(weights)
        if not self.weights or not all(isinstance(w, torch.Tensor) for w in self.weights):
            raise TypeError("weights must be a non-empty iterable of tensors")
        _require_levels(levels)
        self.levels = tuple(levels)
        self.rho = require_positive_number(rho, "rho")
        self.iters = require_int(iters, "iters", minimum=1)
        self.lam = [torch.zeros_like(w.detach()) for w in self.weights]
        self.alpha = [None] * len(self.weights)
        self.g = [torch.zeros_like(w.detach()) for w in self.weights]
        self.project_()

    def penalty(self) -> torch.Tensor:
        r""":math:`\sum_i \frac{\rho}{2}\lVert W_i - G_i + \lambda_i\rVert^2` (differentiable in :math:`W`)."""
        return sum(self.rho / 2 * ((w - g + lam) ** 2).sum() for w, g, lam in zip(self.weights, self.g, self.lam))

    @torch.no_grad()
    def project_(self) -> None:
        r""":math:`G_i \leftarrow \Pi_{\mathcal{C}_i}(W_i + \lambda_i)`, warm-started from the previous
        :math:`\alpha_i`."""
        for i, (w, lam) in enumerate(zip(self.weights, self.lam)):
            self.g[i], self.alpha[i] = project(w.detach() + lam, self.levels, self.alpha[i], self.iters)

    @torch.no_grad()
    def dual_(self) -> None:
        r""":math:`\lambda_i \leftarrow \lambda_i + W_i - G_i`."""
        self.lam = [dual_update(lam, w.detach(), g) for lam, w, g in zip(self.lam, self.weights, self.g)]

    @torch.no_grad()
    def gap(self) -> float:
        r""":math:`\lVert W - G\rVert / \lVert W\rVert` over all tensors: how far the float weights still are from
        the discrete ones."""
        num = sum(((w - g) ** 2).sum() for w, g in zip(self.weights, self.g))
        den = sum((w ** 2).sum() for w in self.weights)
        return float((num / den).sqrt())


def admm_fit(model: nn.Module, data: Split, weights, levels=TERNARY, rho: float = 1e-2, epochs: int = 5,
             lr: float = 0.05, batch_size: int = 64, admm_every: int | None = None, seed: int = 0):
    r"""Train ``model`` with ADMM (proximal, projection and dual steps) and return ``(state, history)``.

    ``weights`` are the tensors constrained to the discrete set (other parameters, such as biases, stay float
    and follow the proximal steps only). Every mini-batch makes one :func:`extragradient_step` on
    :math:`\text{cross-entropy} + \frac{\rho}{2}\lVert W - G + \lambda\rVert^2` with step size ``lr`` (plain
    gradient steps, as the paper's extragradient); every ``admm_every`` mini-batches (default: once per epoch)
    come one projection step and one dual step. ``history`` records, after each projection, ``gap`` (the relative
    distance :math:`\lVert W - G\rVert / \lVert W\rVert`) and ``test_accuracy`` of the network whose constrained
    weights are replaced by :math:`G`. After training the constrained weights hold :math:`G`.
    """
    require_module(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    lr = require_positive_number(lr, "lr")
    n = len(data.x_train)
    steps_per_epoch = -(-n // batch_size)
    admm_every = steps_per_epoch if admm_every is None else require_int(admm_every, "admm_every", minimum=1)
    state = ADMMState(weights, levels, rho)
    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    history = {"gap": [], "test_accuracy": []}

    def record():
        history["gap"].append(state.gap())
        history["test_accuracy"].append(_accuracy_with(model, state, data))

    record()
    step = 0
    for _ in range(epochs):
        model.train()
        for idx in train.minibatches(n, batch_size, generator):
            xb, yb = data.x_train[idx], data.y_train[idx]

            def grad_fn():
                loss = loss_fn(model(xb), yb) + state.penalty()
                return torch.autograd.grad(loss, params)

            extragradient_step(params, grad_fn, lr)
            step += 1
            if step % admm_every == 0:
                state.project_()
                state.dual_()
                record()
    with torch.no_grad():
        for w, g in zip(state.weights, state.g):
            w.copy_(g)
    return state, history


@torch.no_grad()
def _accuracy_with(model: nn.Module, state: ADMMState, data: Split) -> float:
    """Test accuracy with the constrained weights temporarily replaced by G."""
    saved = [w.detach().clone() for w in state.weights]
    for w, g in zip(state.weights, state.g):
        w.copy_(g)
    model.eval()
    accuracy = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    for w, s in zip(state.weights, saved):
        w.copy_(s)
    return accuracy
