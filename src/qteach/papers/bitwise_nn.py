r"""Bitwise Neural Networks: a network whose inputs, weights, biases and activations are all single bits.

Kim and Smaragdis (ICML 2015 workshop) define the feed-forward pass of a *bitwise* network on bipolar binaries
:math:`\mathbb{B} = \{-1, +1\}` (their eq. 1-3):

.. math::
    a^l_i = b^l_i + \sum_{j}^{K^{l-1}} w^l_{i,j} \otimes z^{l-1}_j, \qquad z^l_i = \operatorname{sign}(a^l_i),
    \qquad z^l \in \mathbb{B}^{K^l},\; W^l \in \mathbb{B}^{K^l \times K^{l-1}},\; b^l \in \mathbb{B}^{K^l}

where :math:`\otimes` is XNOR. On :math:`\pm 1` values XNOR *is* multiplication, so the sum is an integer dot
product that hardware computes with XNOR and a bit count (``qteach.bitops.xnor_matmul``). Training is in two
stages: (1) a real-valued network whose weights are squashed by :math:`\tanh` into :math:`(-1, 1)` ("weight
compression"), and (2) "noisy backpropagation": the forward pass uses the binarized weights, biases and
activations, initialised from stage 1, and the gradients update the real-valued copies.

What was checked against the paper's text, and what was not: the abstract and eq. 1-3 (the bipolar feed-forward
pass, binary bias included) were read in a copy of the paper. The weight-compression network
(:math:`\tanh(\bar b) + \sum \tanh(\bar w)\,\bar z`, then :math:`\tanh`), the noisy-backpropagation rule (errors
propagated through the binary weights with no activation derivative, i.e. an identity straight-through
estimator) and the sparsity parameter :math:`\lambda` (the fraction of weights set to zero by a boundary
:math:`\beta`) come from a secondary summary of the paper, not from its text; their equation numbers, the input
encoding the paper used for MNIST and its hyper-parameters were not verified here.

References:

- M. Kim, P. Smaragdis, *Bitwise Neural Networks*, ICML 2015 Workshop on Resource-Efficient Machine Learning.
  https://arxiv.org/abs/1601.06071
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops, quant
from qteach._validate import require_float_tensor, require_int, require_ndim, require_no_nan
from qteach.nn import QuantLinear, SignQuantizer

__all__ = [
    "input_bit_planes",
    "compress",
    "CompressedLinear",
    "CompressedMLP",
    "sparse_sign",
    "BitwiseQuantizer",
    "BitwiseLinear",
    "BitwiseMLP",
    "ternary_xnor_matmul",
    "bitwise_forward",
]


def input_bit_planes(x: torch.Tensor, bits: int = 1) -> torch.Tensor:
    r"""Binary input features: each value in :math:`[0, 1]` becomes ``bits`` bipolar bits.

    .. math::
        q = \operatorname{round}\big(x\,(2^{B} - 1)\big) = \sum_{k=0}^{B-1} c_k 2^k, \qquad
        \text{features} = (2 c_{B-1} - 1, \dots, 2 c_0 - 1) \in \{-1, +1\}^B

    The uniform quantization is :func:`qteach.quant.quantize` (scale :math:`1/(2^B - 1)`, zero point 0); each bit
    :math:`c_k` of the code is one input of the network, most significant first, :math:`1 \mapsto +1` and
    :math:`0 \mapsto -1`. With ``bits=1`` this is a threshold at 0.5. ``x`` is (N, F); the result is (N, F * bits),
    the ``bits`` planes of feature ``f`` side by side. The paper feeds MNIST "represented using binary features";
    its exact encoding was not verified here, so this is one plausible choice.
    """
    require_float_tensor(x, "x")
    require_ndim(x, "x", 2)
    require_no_nan(x, "x")
    bits = require_int(bits, "bits", minimum=1, maximum=8)
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError("x must lie in [0, 1]")
    levels = 2**bits - 1
    codes = quant.quantize(x, torch.tensor(1.0 / levels), torch.tensor(0), bits=bits, signed=False)
    shifts = torch.arange(bits - 1, -1, -1, device=x.device)
    planes = (codes.unsqueeze(-1) >> shifts) & 1
    return (2 * planes - 1).to(torch.float32).reshape(x.shape[0], -1)


def compress(w: torch.Tensor) -> torch.Tensor:
    r"""Weight compression: :math:`\tanh(\bar w) \in (-1, 1)`.

    Stage 1 trains a real-valued network whose effective weights are :math:`\tanh(\bar w)`, bounded like
    bipolar binaries, so that their signs are a good starting point for the binary network.
    """
    require_float_tensor(w, "w")
    return torch.tanh(w)


class CompressedLinear(nn.Linear):
    r"""Stage-1 layer with weight compression: :math:`a = \tanh(\bar b) + \tanh(\bar W)\,\bar z`."""

    def forward(self, x):
        return F.linear(x, compress(self.weight), None if self.bias is None else compress(self.bias))


class CompressedMLP(nn.Module):
    r"""Stage 1: the real-valued network with compressed weights.

    .. math:: a^l = \tanh(\bar b^l) + \tanh(\bar W^l)\,\bar z^{l-1}, \qquad \bar z^l = \tanh(a^l)

    on inputs in :math:`[-1, 1]` (here the bipolar bits of :func:`input_bit_planes`). The last layer returns
    :math:`a^L` times ``output_scale`` :math:`= 1/\sqrt{K^{L-1}}` as logits for a cross-entropy loss (our choice of
    loss; a positive scale does not change the arg-max, which is what the bitwise network predicts).
    """

    def __init__(self, in_features: int, hidden: tuple = (128,), num_classes: int = 10):
        super().__init__()
        widths = [require_int(in_features, "in_features", minimum=1),
                  *(require_int(h, "hidden", minimum=1) for h in hidden),
                  require_int(num_classes, "num_classes", minimum=2)]
        self.layers = nn.ModuleList(CompressedLinear(i, o) for i, o in zip(widths[:-1], widths[1:]))
        self.output_scale = 1.0 / math.sqrt(widths[-2])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x) * self.output_scale


def _check_sparsity(sparsity) -> None:
    """``sparsity`` must be a number in [0, 1) (the fraction of zero weights)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")


def sparse_sign(w: torch.Tensor, sparsity: float = 0.0) -> torch.Tensor:
    r"""Bipolar binarization, optionally with a fraction :math:`\lambda` of zeros ("sparsity").

    .. math::
        w_b = \begin{cases} +1 & w > \beta \\ 0 & |w| \le \beta \\ -1 & w < -\beta \end{cases}, \qquad
        \beta = \text{the } \lambda\text{-quantile of } |w|

    With ``sparsity=0`` no threshold is applied and this is :func:`qteach.binary.sign` (``sign(0) = +1``). A zero
    weight masks a connection; :func:`ternary_xnor_matmul` shows how it is still computed with XNOR and popcount.
    (The sparsity parameter comes from a secondary summary of the paper; see the module notes.)
    """
    require_float_tensor(w, "w")
    _check_sparsity(sparsity)
    signs = binary.sign(w)
    if sparsity == 0:
        return signs
    beta = torch.quantile(w.detach().abs().flatten().float(), float(sparsity)).to(w.dtype)
    return torch.where(w.abs() > beta, signs, torch.zeros_like(w))


class BitwiseQuantizer(nn.Module):
    r"""Weight quantizer of noisy backpropagation: :func:`sparse_sign` forward, identity backward.

    The error is propagated through the binary weights and its gradient is applied to the real-valued weights
    :math:`\hat w` ("since the gradients can get too small to update the binary parameters"), i.e. a
    straight-through estimator with no clipping. ``precision`` is 1 bit, or 2 when zeros are allowed.
    """

    def __init__(self, sparsity: float = 0.0):
        _check_sparsity(sparsity)
        super().__init__()
        self.sparsity = float(sparsity)
        self.precision = 1 if self.sparsity == 0 else 2

    def forward(self, w):
        with torch.no_grad():
            w_q = sparse_sign(w, self.sparsity)
        return binary.straight_through(w, w_q)

    def extra_repr(self):
        return f"sparsity={self.sparsity}"


class BitwiseLinear(QuantLinear):
    r"""Eq. 1 of the paper: binary input, binary weights *and* binary bias, :math:`a = b + W \otimes z`.

    A :class:`qteach.nn.QuantLinear` whose input quantizer is the sign (identity straight-through gradient,
    ``SignQuantizer(clip=None)``) and whose weight quantizer, :class:`BitwiseQuantizer`, is also applied to the
    bias (the bias is always :math:`\pm 1`, never sparse).
    """

    def __init__(self, in_features: int, out_features: int, sparsity: float = 0.0):
        super().__init__(in_features, out_features, bias=True, weight_quantizer=BitwiseQuantizer(sparsity),
                         input_quantizer=SignQuantizer(clip=None))
        self.bias_quantizer = BitwiseQuantizer(0.0)

    def binary_bias(self) -> torch.Tensor:
        return self.bias_quantizer(self.bias)

    def forward(self, x):
        return F.linear(self.quantized_input(x), self.quantized_weight(), self.binary_bias())


class BitwiseMLP(nn.Module):
    r"""Stage 2: the bitwise network trained by noisy backpropagation.

    Layer :math:`l` computes :math:`a^l = b^l + W^l \otimes \operatorname{sign}(a^{l-1})` (eq. 1-2: the sign of a
    layer is applied as the input quantizer of the next), all in :math:`\pm 1`, simulated here in floating point,
    which is exact for these small integers. :meth:`preactivations` returns the integer-valued :math:`a^L`;
    ``forward`` returns it times ``output_scale`` as logits for training. :func:`bitwise_forward` computes the
    same :math:`a^L` with XNOR and popcount.
    """

    def __init__(self, in_features: int, hidden: tuple = (128,), num_classes: int = 10, sparsity: float = 0.0):
        super().__init__()
        widths = [require_int(in_features, "in_features", minimum=1),
                  *(require_int(h, "hidden", minimum=1) for h in hidden),
                  require_int(num_classes, "num_classes", minimum=2)]
        self.layers = nn.ModuleList(BitwiseLinear(i, o, sparsity) for i, o in zip(widths[:-1], widths[1:]))
        self.output_scale = 1.0 / math.sqrt(widths[-2])

    @classmethod
    def from_compressed(cls, stage1: CompressedMLP, sparsity: float = 0.0) -> "BitwiseMLP":
        r"""Initialise the real-valued weights of stage 2 from stage 1: :math:`\hat W = \tanh(\bar W)`,
        :math:`\hat b = \tanh(\bar b)`, so the first binary network is :math:`\operatorname{sign}(\bar W)`."""
        if not isinstance(stage1, CompressedMLP):
            raise TypeError(f"stage1 must be a CompressedMLP, got {type(stage1).__name__}")
        widths = [stage1.layers[0].in_features, *(layer.out_features for layer in stage1.layers)]
        model = cls(widths[0], tuple(widths[1:-1]), widths[-1], sparsity)
        with torch.no_grad():
            for new, old in zip(model.layers, stage1.layers):
                new.weight.copy_(compress(old.weight))
                new.bias.copy_(compress(old.bias))
        return model.to(stage1.layers[0].weight.device)

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """The output layer's :math:`a^L` (integer values stored as floats)."""
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x):
        return self.preactivations(x) * self.output_scale


def ternary_xnor_matmul(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""Product :math:`z\,t^\top` of bipolar ``z`` and ternary ``t`` (values in {-1, 0, +1}) with two XNOR matmuls.

    .. math::
        t = \tfrac{1}{2}\left(t^{+} + t^{-}\right), \quad t^{+} = \begin{cases} +1 & t \ge 0 \\ -1 & t < 0
        \end{cases}, \quad t^{-} = \begin{cases} +1 & t > 0 \\ -1 & t \le 0 \end{cases}
        \;\Rightarrow\; z\,t^\top = \tfrac{1}{2}\left(z\,t^{+\top} + z\,t^{-\top}\right)

    A zero becomes :math:`+1` in one copy and :math:`-1` in the other, so it cancels; the sum of the two integer
    products is even and the halving is exact. A sparse bitwise layer therefore costs two binary products (or
    one product with a mask bit per weight). Returns int32 (M, N).
    """
    require_float_tensor(t, "t")
    if not bool(((t == -1) | (t == 0) | (t == 1)).all()):
        raise ValueError("t must hold only -1, 0 and +1")
    t_plus = torch.where(t >= 0, 1.0, -1.0)
    t_minus = torch.where(t > 0, 1.0, -1.0)
    return torch.div(bitops.xnor_matmul(z, t_plus) + bitops.xnor_matmul(z, t_minus), 2, rounding_mode="floor")


@torch.no_grad()
def bitwise_forward(model: BitwiseMLP, z: torch.Tensor) -> torch.Tensor:
    r"""Bitwise inference: eq. 1-2 with XNOR and popcount, returning the output layer's :math:`a^L` as int32.

    For each layer, :math:`\sum_j w_{ij} \otimes z_j` is ``qteach.bitops.xnor_matmul`` (``K - 2 popcount(XOR)``)
    on the packed bits, or :func:`ternary_xnor_matmul` when the layer has zero weights; the binary bias is added
    as an integer and the sign (``sign(0) = +1``) gives the next layer's bits. ``z`` holds the :math:`\pm 1`
    inputs (N, K). The class is ``argmax`` of the result, an integer comparison.
    """
    if not isinstance(model, BitwiseMLP):
        raise TypeError(f"model must be a BitwiseMLP, got {type(model).__name__}")
    require_float_tensor(z, "z")
    require_ndim(z, "z", 2)
    a = None
    for index, layer in enumerate(model.layers):
        if index > 0:
            z = binary.sign(a).to(torch.float32)
        w = sparse_sign(layer.weight, layer.weight_quantizer.sparsity)
        dot = bitops.xnor_matmul(z, w) if layer.weight_quantizer.sparsity == 0 else ternary_xnor_matmul(z, w)
        a = dot + binary.sign(layer.bias).to(torch.int32)
    return a
