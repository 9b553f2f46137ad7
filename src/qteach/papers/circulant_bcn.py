r"""Circulant binary convolutional networks (CBCN): circulant filters made from each learned filter.

Liu, Ding, Xia, Zhang, Gu, Liu, Ji and Doermann (CVPR 2019, arXiv 1910.10853) propose circulant filters (CiFs)
and a circulant binary convolution (CBConv), trained with circulant back-propagation (CBP): the learned
convolution filters are "manipulated using the circulant transfer matrix" (fig. 1 caption) to vary their
orientations and increase filter diversity; "the circulant binary filters ... are not saved for testing"
(fig. 2 caption); a center loss is used with the softmax loss.

**What could be read.** Only the abstract, the start of the introduction and the captions of figs. 1 and 2
(CVF open access, deepai.org, a2c.fyi). The method section, its equations and numbers, and any official code
were not found. Everything below is therefore **our reconstruction** of what the readable text describes, with
our own equation numbers (R1-R4), not the paper's:

- (R1) the circulant transfer matrix :math:`M` of a 3x3 filter is the permutation that shifts the eight
  outer elements of the filter one step clockwise around the centre (the centre stays);
  :math:`M^2` is an exact 90 degree rotation. :func:`circulant_transfer_matrix`.
- (R2) the :math:`n` CiFs of a learned filter :math:`C` are :math:`C_k = M^{8k/n} C`, :math:`k = 0..n-1`.
  :func:`circulant_filters`.
- (R3) CBConv binarizes each CiF as XNOR-Net does (:math:`\alpha_k \operatorname{sign}(C_k)`) and convolves
  the binarized input with all of them; the :math:`n` responses are concatenated (more feature maps from the
  same learned filters) or max-pooled over the orientations. :class:`CirculantBinaryConv2d`.
- (R4) CBP: the gradient of the learned filter is the sum of the CiFs' gradients mapped back by
  :math:`(M^{8k/n})^\top`. :func:`circulant_backprop` (autograd computes the same; a test checks it).

Reference: C. Liu, W. Ding, X. Xia, B. Zhang, J. Gu, J. Liu, R. Ji, D. Doermann, *Circulant Binary
Convolutional Networks: Enhancing the Performance of 1-bit DCNNs with Circulant Back Propagation*, CVPR 2019.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import nn as qnn
from qteach._validate import require_float_tensor, require_int, require_str
from qteach.papers import xnor_net

__all__ = [
    "FUSIONS",
    "RING",
    "CirculantBinaryConv2d",
    "binary_cnn",
    "circulant_backprop",
    "circulant_filters",
    "circulant_transfer_matrix",
    "xnor_ops",
]

RING = (0, 1, 2, 5, 8, 7, 6, 3)  # the outer ring of a 3x3 filter (row-major indices), clockwise from top-left
FUSIONS = ("concat", "max")


def _require_orientations(n) -> int:
    n = require_int(n, "orientations", minimum=1)
    if 8 % n:
        raise ValueError(f"orientations must divide 8 (1, 2, 4 or 8), got {n}")
    return n


def circulant_transfer_matrix(shift: int = 1) -> torch.Tensor:
    r"""(R1, ours) The 9x9 permutation :math:`M^{s}` acting on a row-major 3x3 filter :math:`c`:

    .. math:: (M^{s} c)_{r_{(j + s) \bmod 8}} = c_{r_j}, \qquad (M^{s} c)_4 = c_4,

    where :math:`r_0..r_7` is :data:`RING`, the outer ring clockwise. :math:`M^8 = I`, :math:`M^2` rotates by
    90 degrees clockwise.
    """
    shift = require_int(shift, "shift")
    m = torch.zeros(9, 9)
    m[4, 4] = 1.0
    for j, source in enumerate(RING):
        m[RING[(j + shift) % 8], source] = 1.0
    return m


def circulant_filters(w: torch.Tensor, orientations: int = 4) -> torch.Tensor:
    r"""(R2, ours) The CiFs :math:`C_k = M^{8k/n} C`, :math:`k = 0, \dots, n-1`, of 3x3 filters ``w``.

    ``w`` has shape (..., 3, 3); the result (n, ..., 3, 3). A permutation, written as indexing: autograd
    then sums the CiFs' gradients back onto ``w`` (R4).
    """
    require_float_tensor(w, "w")
    if w.dim() < 2 or tuple(w.shape[-2:]) != (3, 3):
        raise ValueError(f"w must end in a 3x3 filter, got shape {tuple(w.shape)}")
    n = _require_orientations(orientations)
    flat = w.flatten(-2)
    out = []
    for k in range(n):
        index = circulant_transfer_matrix(8 * k // n).argmax(dim=1)  # output i takes input index[i]
        out.append(flat[..., index].unflatten(-1, (3, 3)))
    return torch.stack(out)


def circulant_backprop(grad_cifs: torch.Tensor) -> torch.Tensor:
    r"""(R4, ours) CBP: the gradient of the learned filter from the gradients of its :math:`n` CiFs,

    .. math:: \frac{\partial L}{\partial C} = \sum_{k=0}^{n-1} \big(M^{8k/n}\big)^{\top}
        \frac{\partial L}{\partial C_k} .

    ``grad_cifs`` has shape (n, ..., 3, 3) as returned by :func:`circulant_filters`.
    """
    require_float_tensor(grad_cifs, "grad_cifs")
    if grad_cifs.dim() < 3 or tuple(grad_cifs.shape[-2:]) != (3, 3):
        raise ValueError(f"grad_cifs must be (n, ..., 3, 3), got shape {tuple(grad_cifs.shape)}")
    n = _require_orientations(grad_cifs.shape[0])
    total = torch.zeros_like(grad_cifs[0].flatten(-2))
    for k in range(n):
        m = circulant_transfer_matrix(8 * k // n).to(grad_cifs)
        total = total + grad_cifs[k].flatten(-2) @ m  # row vector times M == (M^T g)^T
    return total.unflatten(-1, (3, 3))


class CirculantBinaryConv2d(nn.Module):
    r"""(R3, ours) CBConv: sign input, :math:`n` XNOR-binarized CiFs of each learned 3x3 filter, then fusion.

    .. math:: y_{k} = \operatorname{sign}(x) * \big(\alpha_k \operatorname{sign}(M^{8k/n} C)\big), \qquad
        y = [y_0, \dots, y_{n-1}] \ (\texttt{concat}) \quad\text{or}\quad y = \max_k y_k \ (\texttt{max})

    ``concat`` gives ``n * out_channels`` maps (channel ``k * out_channels + o`` is orientation ``k`` of filter
    ``o``), ``max`` gives ``out_channels``. Weights use XNOR-Net's quantizer
    (:class:`qteach.papers.xnor_net.BinaryWeight`) unless ``weight_quantizer`` is given; the input the clipped
    straight-through sign. No bias.
    """

    def __init__(self, in_channels: int, out_channels: int, orientations: int = 4, fuse: str = "concat",
                 padding: int = 1, weight_quantizer=None):
        super().__init__()
        self.in_channels = require_int(in_channels, "in_channels", minimum=1)
        self.out_channels = require_int(out_channels, "out_channels", minimum=1)
        self.orientations = _require_orientations(orientations)
        if require_str(fuse, "fuse") not in FUSIONS:
            raise ValueError(f"fuse must be one of {FUSIONS}, got {fuse!r}")
        self.fuse = fuse
        self.padding = require_int(padding, "padding", minimum=0)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        if weight_quantizer is not None and not callable(weight_quantizer):
            raise TypeError(f"weight_quantizer must be callable, got {type(weight_quantizer).__name__}")
        self.weight_quantizer = weight_quantizer or xnor_net.BinaryWeight(scaled=True)
        self.input_quantizer = qnn.SignQuantizer()

    @property
    def maps(self) -> int:
        """Number of output feature maps."""
        return self.out_channels * (self.orientations if self.fuse == "concat" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        cifs = circulant_filters(self.weight, self.orientations).flatten(0, 1)  # (n * out, in, 3, 3)
        y = nn.functional.conv2d(self.input_quantizer(x), self.weight_quantizer(cifs), padding=self.padding)
        if self.fuse == "max":
            y = y.unflatten(1, (self.orientations, self.out_channels)).amax(dim=1)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, orientations={self.orientations}, fuse={self.fuse!r}, "
                f"maps={self.maps}")


def binary_cnn(filters: str = "circulant", channels: int = 8, orientations: int = 4, fuse: str = "concat",
               num_classes: int = 10, seed: int = 0, weight_quantizer=None) -> nn.Sequential:
    r"""A small CNN for 8x8 digits: a real 3x3 conv, two binary blocks (batch norm, sign, binary 3x3 conv,
    2x2 max-pool), batch norm, ReLU, global average pooling and a real classifier.

    ``filters="plain"`` uses XNOR-Net's binary convolution (:class:`qteach.papers.xnor_net.XNORConv2d` with
    :math:`\alpha` and no :math:`K`) with ``channels`` free filters per block; ``"circulant"`` uses
    :class:`CirculantBinaryConv2d` with ``channels`` learned filters and ``orientations`` CiFs each, binarized by
    a fresh ``weight_quantizer()`` (a zero-argument factory) if one is given.
    """
    if require_str(filters, "filters") not in ("plain", "circulant"):
        raise ValueError(f"filters must be 'plain' or 'circulant', got {filters!r}")
    channels = require_int(channels, "channels", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    seed = require_int(seed, "seed", minimum=0)

    def conv(c_in):
        if filters == "plain":
            return xnor_net.XNORConv2d(c_in, channels, 3, padding=1, input_scale=False)
        return CirculantBinaryConv2d(c_in, channels, orientations, fuse,
                                     weight_quantizer=weight_quantizer() if weight_quantizer else None)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        block1 = conv(8)
        maps1 = getattr(block1, "maps", channels)
        block2 = conv(maps1)
        maps2 = getattr(block2, "maps", channels)
        return nn.Sequential(first, nn.BatchNorm2d(8), nn.ReLU(),
                             nn.BatchNorm2d(8), block1, nn.MaxPool2d(2),
                             nn.BatchNorm2d(maps1), block2, nn.MaxPool2d(2),
                             nn.BatchNorm2d(maps2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(maps2, num_classes))


def xnor_ops(model: nn.Module, height: int = 8, width: int = 8) -> tuple[int, int]:
    """``(binary multiply-accumulates per image, learned binary weights)`` of the binary convolutions of a
    :func:`binary_cnn` for an input of ``height`` x ``width`` pixels (each block halves the image)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    h, w = require_int(height, "height", minimum=1), require_int(width, "width", minimum=1)
    macs = params = 0
    for m in model.modules():
        if isinstance(m, (CirculantBinaryConv2d, xnor_net.XNORConv2d)):
            filters = m.out_channels * getattr(m, "orientations", 1)  # every CiF is convolved, also for max
            macs += filters * m.in_channels * 9 * h * w
            params += m.weight.numel()
            h, w = h // 2, w // 2
    return macs, params
