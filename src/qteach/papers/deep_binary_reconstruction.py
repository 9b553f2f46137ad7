r"""DBRC: deep binary reconstruction for cross-modal hashing, with the adaptive tanh (ATanh).

Li, Hu and Nie (ACM Multimedia 2017, arXiv 1708.05127; a journal version by Hu, Nie and Li appeared in IEEE
Transactions on Multimedia 21(4), 2019) learn binary hash codes for two modalities (image and text) *without*
the usual two stages "learn real-valued codes, then threshold them". The codes come out of a hashing layer whose
activation first scales its input and then applies tanh,

.. math:: h = \operatorname{ATanh}(z) = \tanh(\alpha z), \qquad \alpha > 0 \text{ learned},

so that as :math:`\alpha` grows the layer's outputs approach :math:`\pm 1` and :math:`\operatorname{sign}(h)`
changes almost nothing (:func:`adaptive_tanh`, :class:`AdaptiveTanh`). The network is trained without labels to
*reconstruct* both modalities from the codes; retrieval then ranks the other modality's database by the Hamming
distance between binary codes, computed with XOR and popcount (:func:`hamming_distance`, built on
:func:`qteach.bitops.xnor_matmul`), and is scored by mean average precision (:func:`mean_average_precision`).

**What could be read.** Only the abstracts of the two versions and the first lines of the introduction. They
state: an unsupervised multimodal reconstruction network, the ATanh hashing layer ("first scales the input
activations to suitable scopes and, then, feeds them to the tanh function"), linear and non-linear scaling
variants, and image2text/text2image retrieval on three benchmarks. Everything else here is **our
reconstruction** and is labelled so: the linear scaling :math:`\alpha z` with one :math:`\alpha` per code bit
(the non-linear variant is not modelled), the penalty :math:`\lambda \sum_k \alpha_k^{-2}` that rewards a large
:math:`\alpha` (:func:`alpha_penalty`), the architecture of :class:`DBRCNet` and its cross-reconstruction loss
(:func:`reconstruction_loss`), the synthetic text modality (:func:`tag_modality`) and the two-stage baseline
(:func:`cca_sign_codes`).

References:

- X. Li, D. Hu, F. Nie, *Deep Binary Reconstruction for Cross-modal Hashing*, ACM MM 2017, arXiv:1708.05127.
- D. Hu, F. Nie, X. Li, *Deep Binary Reconstruction for Cross-Modal Hashing*, IEEE TMM 21(4):973-985, 2019.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import bitops
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_ndim,
    require_no_nan,
    require_non_negative_number,
    require_positive_number,
    require_tensor,
)

__all__ = [
    "AdaptiveTanh",
    "DBRCNet",
    "adaptive_tanh",
    "alpha_penalty",
    "average_precision",
    "binarization_gap",
    "cca_sign_codes",
    "hamming_distance",
    "mean_average_precision",
    "reconstruction_loss",
    "tag_modality",
    "train_dbrc",
]


def adaptive_tanh(z: torch.Tensor, alpha) -> torch.Tensor:
    r"""ATanh with linear scaling: :math:`\tanh(\alpha z)`, elementwise (``alpha`` broadcasts over ``z``).

    .. math:: \operatorname{ATanh}(z) = \tanh(\alpha z), \qquad
        \frac{\partial}{\partial z} = \alpha\,(1 - \tanh^2(\alpha z)), \qquad
        \frac{\partial}{\partial \alpha} = z\,(1 - \tanh^2(\alpha z))

    As :math:`\alpha \to \infty` it tends to :math:`\operatorname{sign}(z)` (for :math:`z \ne 0`). The scaling
    is the "linear" one of the abstract of Li, Hu and Nie (2017/2019); the equation is our reading of it.
    ``alpha`` must be positive (a number or a tensor broadcastable to ``z``).
    """
    z = require_float_tensor(z, "z")
    if isinstance(alpha, torch.Tensor):
        require_no_nan(alpha, "alpha")
        if bool((alpha <= 0).any()):
            raise ValueError("alpha must be positive")
    else:
        alpha = require_positive_number(alpha, "alpha")
    return torch.tanh(alpha * z)


class AdaptiveTanh(nn.Module):
    r"""The hashing layer's activation :math:`\tanh(\alpha_k z_k)` with one learned :math:`\alpha_k > 0` per bit.

    :math:`\alpha_k = \exp(s_k)` keeps it positive (our parametrisation). ``learn_alpha=False`` freezes
    :math:`\alpha = 1`: a plain tanh, the relaxation that two-stage methods threshold after training.
    """

    def __init__(self, bits: int, alpha: float = 1.0, learn_alpha: bool = True):
        super().__init__()
        bits = require_int(bits, "bits", minimum=1)
        alpha = require_positive_number(alpha, "alpha")
        log_alpha = torch.full((bits,), float(alpha)).log()
        self.log_alpha = nn.Parameter(log_alpha, requires_grad=bool(learn_alpha))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return adaptive_tanh(z, self.alpha)


def alpha_penalty(alpha: torch.Tensor) -> torch.Tensor:
    r"""Our penalty that rewards large scales: :math:`\sum_k \alpha_k^{-2}` (reconstruction, not the paper's).

    .. math:: R(\alpha) = \sum_{k=1}^{K} \alpha_k^{-2}

    Added to the loss with a weight :math:`\lambda`, it pushes every :math:`\alpha_k` up, so the hashing layer
    becomes binary during training instead of being thresholded afterwards.
    """
    alpha = require_float_tensor(alpha, "alpha")
    if bool((alpha <= 0).any()):
        raise ValueError("alpha must be positive")
    return (alpha ** -2).sum()


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class DBRCNet(nn.Module):
    r"""Our two-modality reconstruction network: an encoder per modality into one :math:`K`-bit hashing layer,
    and a decoder per modality out of it (every code reconstructs *both* modalities).

    .. math:: h_x = \operatorname{ATanh}_x(f_x(x)), \quad h_y = \operatorname{ATanh}_y(f_y(y)), \qquad
        b = \operatorname{sign}(h)

    ``forward(x, y)`` returns the two relaxed codes; :meth:`codes` returns binary ones (:math:`\pm 1`).
    """

    def __init__(self, dim_x: int, dim_y: int, bits: int, hidden: int = 64, learn_alpha: bool = True):
        super().__init__()
        dims = [require_int(v, n, minimum=1) for v, n in ((dim_x, "dim_x"), (dim_y, "dim_y"), (bits, "bits"),
                                                             (hidden, "hidden"))]
        dim_x, dim_y, bits, hidden = dims
        self.enc_x, self.enc_y = _mlp(dim_x, hidden, bits), _mlp(dim_y, hidden, bits)
        self.dec_x, self.dec_y = _mlp(bits, hidden, dim_x), _mlp(bits, hidden, dim_y)
        self.act_x = AdaptiveTanh(bits, learn_alpha=learn_alpha)
        self.act_y = AdaptiveTanh(bits, learn_alpha=learn_alpha)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.act_x(self.enc_x(x)), self.act_y(self.enc_y(y))

    @torch.no_grad()
    def codes(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_x, h_y = self(x, y)
        return torch.where(h_x >= 0, 1.0, -1.0), torch.where(h_y >= 0, 1.0, -1.0)


def reconstruction_loss(model: DBRCNet, x: torch.Tensor, y: torch.Tensor, lam: float = 0.0) -> torch.Tensor:
    r"""Our cross-reconstruction objective: each modality's code must rebuild both modalities.

    .. math:: L = \sum_{h \in \{h_x, h_y\}} \big(\lVert x - g_x(h)\rVert^2 + \lVert y - g_y(h)\rVert^2\big)
        + \lambda \big(R(\alpha_x) + R(\alpha_y)\big)

    (squared errors averaged over the batch, :math:`R` = :func:`alpha_penalty`). Rebuilding :math:`y` from
    :math:`h_x` carries the inter-modal consistency, rebuilding :math:`x` the intra-modal one; no labels are used.
    """
    if not isinstance(model, DBRCNet):
        raise TypeError(f"model must be a DBRCNet, got {type(model).__name__}")
    lam = require_non_negative_number(lam, "lam")
    h_x, h_y = model(x, y)
    loss = 0.0
    for h in (h_x, h_y):
        loss = loss + ((x - model.dec_x(h)) ** 2).sum(1).mean() + ((y - model.dec_y(h)) ** 2).sum(1).mean()
    return loss + lam * (alpha_penalty(model.act_x.alpha) + alpha_penalty(model.act_y.alpha))


def train_dbrc(x: torch.Tensor, y: torch.Tensor, bits: int, adaptive: bool = True, lam: float = 1.0,
               steps: int = 100, lr: float = 0.01, alpha_lr: float = 0.08, seed: int = 0) -> DBRCNet:
    """Train :class:`DBRCNet` full batch with Adam on paired samples ``x`` (N, dx) and ``y`` (N, dy).

    ``adaptive=True``: learned :math:`\\alpha` (its log with learning rate ``alpha_lr``) and the penalty weight
    ``lam`` (DBRC as we reconstruct it); ``adaptive=False``: plain tanh, no penalty (the relax-then-threshold
    baseline). Labels are never seen.
    """
    x, y = require_float_tensor(x, "x"), require_float_tensor(y, "y")
    require_ndim(x, "x", 2)
    require_ndim(y, "y", 2)
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same samples (pairs), got {len(x)} and {len(y)} rows")
    steps = require_int(steps, "steps", minimum=1)
    lr, alpha_lr = require_positive_number(lr, "lr"), require_positive_number(alpha_lr, "alpha_lr")
    torch.manual_seed(require_int(seed, "seed", minimum=0))
    model = DBRCNet(x.shape[1], y.shape[1], bits, learn_alpha=bool(adaptive))
    scales = [model.act_x.log_alpha, model.act_y.log_alpha]
    weights = [p for n, p in model.named_parameters() if "log_alpha" not in n]
    groups = [{"params": weights}] + ([{"params": scales, "lr": alpha_lr}] if adaptive else [])
    optimizer = torch.optim.Adam(groups, lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        reconstruction_loss(model, x, y, lam if adaptive else 0.0).backward()
        optimizer.step()
    return model


def binarization_gap(h: torch.Tensor) -> float:
    r"""Mean distance of relaxed codes to their signs, :math:`\operatorname{mean}|h - \operatorname{sign}(h)|`
    (0 for binary codes, 1 for codes at 0): what thresholding after training throws away."""
    h = require_float_tensor(h, "h")
    return (h - torch.where(h >= 0, 1.0, -1.0)).abs().mean().item()


def hamming_distance(query_codes: torch.Tensor, db_codes: torch.Tensor) -> torch.Tensor:
    r"""Hamming distances between the signs of two sets of codes, with XOR and popcount.

    .. math:: d_H(b_q, b_d) = \operatorname{popcount}(\operatorname{bits}(b_q) \oplus \operatorname{bits}(b_d))
        = \tfrac{1}{2}\big(K - \langle b_q, b_d\rangle\big)

    ``query_codes`` (M, K) and ``db_codes`` (N, K) are real (binarised with :math:`\operatorname{sign}(0)=+1`);
    the result is int64 (M, N). :func:`qteach.bitops.xnor_matmul` gives :math:`K - 2\,\operatorname{popcount}`.
    """
    query_codes, db_codes = require_tensor(query_codes, "query_codes"), require_tensor(db_codes, "db_codes")
    require_ndim(query_codes, "query_codes", 2)
    require_ndim(db_codes, "db_codes", 2)
    if query_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(f"query_codes and db_codes must have the same code length, got {query_codes.shape[1]} "
                         f"and {db_codes.shape[1]}")
    k = query_codes.shape[1]
    return ((k - bitops.xnor_matmul(query_codes, db_codes).to(torch.int64)) // 2)


def _require_ranking_inputs(distances, relevant) -> None:
    distances, relevant = require_tensor(distances, "distances"), require_tensor(relevant, "relevant")
    require_ndim(distances, "distances", 2)
    require_no_nan(distances.double(), "distances")
    if relevant.dtype != torch.bool:
        raise TypeError(f"relevant must be a bool tensor, got {relevant.dtype}")
    if relevant.shape != distances.shape:
        raise ValueError(f"relevant must have the shape of distances {tuple(distances.shape)}, got "
                         f"{tuple(relevant.shape)}")
    if not bool(relevant.any(1).all()):
        raise ValueError("relevant: every query needs at least one relevant database item (AP is undefined)")


def average_precision(distances: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    r"""Average precision of each query when the database is ranked by increasing distance.

    .. math:: \operatorname{AP}_q = \frac{1}{R_q} \sum_{n=1}^{N} \operatorname{rel}_q(n)\,
        \frac{\sum_{m \le n} \operatorname{rel}_q(m)}{n}

    with :math:`R_q` the number of relevant items. Ties (frequent with Hamming distances) keep database order
    (a stable sort), so the value is exact and deterministic. ``distances`` (M, N), ``relevant`` bool (M, N).
    """
    _require_ranking_inputs(distances, relevant)
    order = torch.sort(distances, dim=1, stable=True).indices
    rel = relevant.gather(1, order).double()
    precision = rel.cumsum(1) / torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)
    return (precision * rel).sum(1) / rel.sum(1)


def mean_average_precision(distances: torch.Tensor, relevant: torch.Tensor) -> float:
    r"""mAP over all queries, :math:`\frac{1}{M}\sum_q \operatorname{AP}_q` (:func:`average_precision`)."""
    return average_precision(distances, relevant).mean().item()


def cca_sign_codes(x: torch.Tensor, y: torch.Tensor, bits: int, ridge: float = 1e-3):
    r"""Two-stage baseline: canonical correlation analysis, then the sign (ours; the classic relaxation).

    .. math:: \max_{u, v}\ \frac{u^\top C_{xy} v}{\sqrt{u^\top C_{xx} u\; v^\top C_{yy} v}}, \qquad
        b_x = \operatorname{sign}(U^\top (x - \bar{x})), \quad b_y = \operatorname{sign}(V^\top (y - \bar{y}))

    Solved with whitening and an SVD of :math:`C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2}` (ridge added to the
    covariances). Returns a function ``encode(x, y) -> (b_x, b_y)`` for new samples. ``bits`` must not exceed
    either dimension.
    """
    x, y = require_float_tensor(x, "x").double(), require_float_tensor(y, "y").double()
    bits = require_int(bits, "bits", minimum=1, maximum=min(x.shape[1], y.shape[1]))
    ridge = require_positive_number(ridge, "ridge")
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my

    def inv_sqrt(c):
        vals, vecs = torch.linalg.eigh(c + ridge * torch.eye(len(c), dtype=c.dtype))
        return vecs @ torch.diag(vals.rsqrt()) @ vecs.T

    wx, wy = inv_sqrt(xc.T @ xc / len(x)), inv_sqrt(yc.T @ yc / len(y))
    u, _, vh = torch.linalg.svd(wx @ (xc.T @ yc / len(x)) @ wy)
    proj_x, proj_y = wx @ u[:, :bits], wy @ vh.T[:, :bits]

    def encode(x_new, y_new):
        px, py = (x_new.double() - mx) @ proj_x, (y_new.double() - my) @ proj_y
        return torch.where(px >= 0, 1.0, -1.0), torch.where(py >= 0, 1.0, -1.0)

    return encode


def tag_modality(labels: torch.Tensor, vocabulary: int = 48, tags: int = 5, noise: float = 0.4,
                 seed: int = 0) -> torch.Tensor:
    r"""Our synthetic "text" modality: a bag of tags drawn from a word distribution of the sample's class.

    Each class :math:`c` gets a seeded distribution :math:`p_c = \operatorname{softmax}(3 g_c)` over the
    vocabulary (:math:`g_c \sim N(0, I)`, a few dominant words that classes partly share). Each sample draws
    ``tags`` words, each from :math:`p_c` with probability :math:`1 - \text{noise}`, else uniformly; the result is
    the 0/1 presence vector (N, vocabulary), like the tag vectors of image-text benchmarks.
    """
    labels = require_tensor(labels, "labels")
    if labels.dtype not in (torch.int64, torch.int32) or labels.dim() != 1:
        raise TypeError("labels must be a 1-d integer tensor of class indices")
    vocabulary = require_int(vocabulary, "vocabulary", minimum=2)
    tags = require_int(tags, "tags", minimum=1)
    noise = require_non_negative_number(noise, "noise")
    if noise > 1:
        raise ValueError(f"noise must be in [0, 1], got {noise}")
    g = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    word_probs = torch.softmax(3 * torch.randn(int(labels.max()) + 1, vocabulary, generator=g), dim=1)
    probs = (1 - noise) * word_probs[labels] + noise / vocabulary
    words = torch.multinomial(probs, tags, replacement=True, generator=g)
    return torch.zeros(len(labels), vocabulary).scatter_(1, words, 1.0)
