r"""Semi-binary decomposition: a weight matrix as two binary matrices and a positive diagonal.

Hu, Li, Wang, Zhang and Cheng (ECCV 2018) decompose a weight matrix :math:`W \in \mathbb{R}^{m \times n}` into
two binary matrices and a diagonal matrix (abstract):

.. math:: W \approx U D V^\top, \qquad U \in \{-1, +1\}^{m \times k},\ V \in \{-1, +1\}^{n \times k},
    \ D = \operatorname{diag}(d_1, \dots, d_k),\ d_j \ge 0 .

The product of binary matrices takes more values than a binary matrix, so the decomposition has more
representation capacity than BWN's :math:`\alpha\,\operatorname{sign}(W)`; and :math:`x^\top U D V^\top` is
computed with two binary products and :math:`k` multiplications. The paper fits it by *alternating
optimisation* that keeps the binary constraints (abstract). Its method section (the update equations and their
numbers) could not be read for this book, so this module states the alternating scheme it implements, each step
an exact or coordinate-wise minimiser of the same objective

.. math:: \min_{U, d, V} \; \lVert W - U \operatorname{diag}(d) V^\top \rVert_F^2 :

- **d-step** (:func:`fit_d`), :math:`U, V` fixed: a linear least-squares problem in :math:`d`, because
  :math:`U D V^\top = \sum_j d_j u_j v_j^\top`. Normal equations :math:`G d = b` with
  :math:`G_{ij} = (u_i^\top u_j)(v_i^\top v_j)` and :math:`b_j = u_j^\top W v_j`. A negative :math:`d_j` is
  made positive by flipping the column :math:`u_j` (still binary), so :math:`d \ge 0` costs nothing.
- **U-step** (:func:`update_u`), :math:`d, V` fixed: with :math:`B = V D` the rows of :math:`U` are
  independent binary least-squares problems; one sweep of cyclic coordinate descent sets each bit to its exact
  minimiser given the others,

  .. math:: u_{:j} \leftarrow \operatorname{sign}\big( (W B)_{:j} - \textstyle\sum_{l \ne j} u_{:l}
      (B^\top B)_{lj} \big),

  so the error never increases.
- **V-step**: the U-step on :math:`W^\top` with the roles of :math:`U` and :math:`V` exchanged.

The starting point (:func:`init_from_svd`) is the sign of the leading :math:`k` singular vectors. Both the
coordinate-descent update and the SVD start are this book's choices, not read from the paper.

Storage (:func:`storage_bits`): :math:`(m + n)k` bits and :math:`k` 32-bit scales, against BWN's :math:`mn` bits
and :math:`m` scales (one per output row, :mod:`qteach.papers.xnor_net`).

References:

- Q. Hu, G. Li, P. Wang, Y. Zhang, J. Cheng, *Training Binary Weight Networks via Semi-Binary Decomposition*,
  ECCV 2018, LNCS 11217, pp. 657-673, doi:10.1007/978-3-030-01261-8_39 (pp. 637-653 in the CVF open-access
  version; abstract read there, method section not). https://openaccess.thecvf.com/content_ECCV_2018/html/Qinghao_Hu_Training_Binary_Weight_ECCV_2018_paper.html
"""

from __future__ import annotations

import torch

from qteach import binary
from qteach._validate import require_float_tensor, require_int, require_ndim, require_no_nan

__all__ = ["reconstruct", "decomposition_error", "fit_d", "update_u", "init_from_svd", "fit",
           "storage_bits", "bwn_storage_bits", "brute_force"]


def _require_matrix(w, name: str = "w") -> torch.Tensor:
    require_float_tensor(w, name)
    require_ndim(w, name, 2)
    if w.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(w.shape)}")
    require_no_nan(w, name)
    return w


def _require_binary(u, name: str, rows: int, k: int | None = None) -> torch.Tensor:
    require_float_tensor(u, name)
    require_ndim(u, name, 2)
    if u.shape[0] != rows or (k is not None and u.shape[1] != k):
        raise ValueError(f"{name} must have shape ({rows}, {k if k is not None else 'k'}), got {tuple(u.shape)}")
    if not bool(((u == 1) | (u == -1)).all()):
        raise ValueError(f"{name} must hold only +1 and -1")
    return u


def reconstruct(u: torch.Tensor, d: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r""":math:`U \operatorname{diag}(d) V^\top`."""
    return (u * d) @ v.T


def decomposition_error(w: torch.Tensor, u: torch.Tensor, d: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""The objective :math:`\lVert W - U \operatorname{diag}(d) V^\top \rVert_F^2`."""
    _require_matrix(w)
    return ((w - reconstruct(u, d, v)) ** 2).sum()


def fit_d(w: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""d-step: the least-squares :math:`d` for fixed :math:`U, V` (normal equations :math:`G d = b`), then
    :math:`d \ge 0` by flipping the columns of :math:`U` whose :math:`d_j < 0`. Returns ``(d, u)``."""
    _require_matrix(w)
    _require_binary(u, "u", w.shape[0])
    _require_binary(v, "v", w.shape[1], u.shape[1])
    gram = (u.T @ u) * (v.T @ v)
    b = ((u.T @ w) * v.T).sum(1)                       # b_j = u_j^T W v_j
    d = torch.linalg.lstsq(gram.double(), b.double().unsqueeze(1)).solution.squeeze(1).to(w.dtype)
    flip = torch.where(d < 0, -1.0, 1.0).to(w.dtype)
    return d * flip, u * flip


def update_u(w: torch.Tensor, d: torch.Tensor, v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""U-step: one sweep of cyclic coordinate descent over the columns of :math:`U` (rows in parallel), each
    bit set to :math:`\operatorname{sign}((WB)_{:j} - \sum_{l \ne j} u_{:l} (B^\top B)_{lj})`, :math:`B = VD`."""
    _require_matrix(w)
    _require_binary(u, "u", w.shape[0])
    _require_binary(v, "v", w.shape[1], u.shape[1])
    bmat = v * d
    p, q = w @ bmat, bmat.T @ bmat
    u = u.clone()
    for j in range(u.shape[1]):
        rest = u @ q[:, j] - u[:, j] * q[j, j]
        u[:, j] = binary.sign(p[:, j] - rest)
    return u


def init_from_svd(w: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The start: the signs of the ``k`` leading left and right singular vectors, ``k <= min(m, n)``.
    Returns ``(u, v)``."""
    _require_matrix(w)
    k = require_int(k, "k", minimum=1, maximum=min(w.shape))
    left, _, right_t = torch.linalg.svd(w.double(), full_matrices=False)
    return binary.sign(left[:, :k]).to(w.dtype), binary.sign(right_t[:k].T).to(w.dtype)


def fit(w: torch.Tensor, k: int, iterations: int = 20) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    r"""Alternating optimisation of :math:`\lVert W - U D V^\top \rVert_F^2`: SVD start, then ``iterations``
    rounds of d-step, U-step, d-step, V-step. Returns ``(u, d, v, errors)``, ``errors`` the objective after the
    first d-step and after each round (non-increasing)."""
    _require_matrix(w)
    k = require_int(k, "k", minimum=1)
    iterations = require_int(iterations, "iterations", minimum=0)
    u, v = init_from_svd(w, k)
    d, u = fit_d(w, u, v)
    errors = [decomposition_error(w, u, d, v).item()]
    for _ in range(iterations):
        u = update_u(w, d, v, u)
        d, u = fit_d(w, u, v)
        v = update_u(w.T, d, u, v)
        d, v = fit_d(w.T, v, u)
        errors.append(decomposition_error(w, u, d, v).item())
    return u, d, v, errors


def storage_bits(m: int, n: int, k: int, scale_bits: int = 32) -> int:
    """Bits to store :math:`U, V` (binary) and :math:`d` (``scale_bits`` each): :math:`(m + n)k + k \\cdot
    \\text{scale\\_bits}`."""
    m, n, k = (require_int(x, name, minimum=1) for x, name in ((m, "m"), (n, "n"), (k, "k")))
    return (m + n) * k + k * require_int(scale_bits, "scale_bits", minimum=1)


def bwn_storage_bits(m: int, n: int, scale_bits: int = 32) -> int:
    """Bits of BWN's :math:`\\alpha_i\\,\\operatorname{sign}(W_{i,:})`: :math:`mn + m \\cdot \\text{scale\\_bits}`."""
    m, n = require_int(m, "m", minimum=1), require_int(n, "n", minimum=1)
    return m * n + m * require_int(scale_bits, "scale_bits", minimum=1)


def brute_force(w: torch.Tensor, k: int) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The global minimum over all binary :math:`U, V` (with the least-squares :math:`d` for each), for tiny
    matrices only (:math:`2^{(m+n)k} \\le 2^{16}`). Returns ``(error, u, d, v)``."""
    _require_matrix(w)
    k = require_int(k, "k", minimum=1)
    m, n = w.shape
    if (m + n) * k > 16:
        raise ValueError(f"brute_force enumerates 2**((m+n)k) pairs; (m+n)k = {(m + n) * k} > 16")
    codes = torch.tensor([[1.0 - 2 * ((c >> b) & 1) for b in range((m + n) * k)] for c in range(2 ** ((m + n) * k))],
                         dtype=w.dtype)
    best = None
    for code in codes:
        u, v = code[: m * k].reshape(m, k), code[m * k:].reshape(n, k)
        d, u = fit_d(w, u, v)
        e = decomposition_error(w, u, d, v).item()
        if best is None or e < best[0] - 1e-12:
            best = (e, u, d, v)
    return best
