r"""Real-to-Binary Net: real-valued shortcuts, data-driven channel gates and attention matching
(Martinez, Yang, Bulat & Tzimiropoulos, ICLR 2020, :cite:`martinez2020training`).

The paper makes a binary convolution approximate the real-valued one it replaces in two ways: a loss that matches
the *spatial attention maps* of the binary network's blocks to those of a real-valued teacher, and a *gate* that
re-scales each output channel of the binary convolution by factors computed from the block's real-valued input.
Both sit on a "strong baseline" block: batch norm, sign of the input, binary convolution, a learned scale
(XNOR-Net++ style), PReLU and a real-valued shortcut around it.

The official repository (github.com/brais-martinez/real2binary) holds only a README; it links the
re-implementation in larq zoo, which this module transcribes (file and line in each docstring):
``larq_zoo/literature/real_to_bin_nets.py`` (the blocks) and
``larq_zoo/training/knowledge_distillation/knowledge_distillation.py`` (the attention loss), larq/zoo at commit
77c5853. The paper's Sec. 4 could not be read here (abstract, introduction and the caption of fig. 1 only), so the
formulas below are the re-implementation's, and equations are not cited by number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_module,
    require_ndim,
    require_non_negative_number,
    require_pair,
    require_str,
)
from qteach.data import Split
from qteach.seed import set_seed
from qteach.train import History, fit_loss

#: What scales the binary convolution's output: nothing, a learned factor per channel (XNOR-Net++, the strong
#: baseline), or the data-driven gate (Real-to-Binary).
SCALINGS = ("none", "learned", "gate")
#: The gate's compression ratio r (larq zoo ``scaling_r = 8``, real_to_bin_nets.py line 133).
GATE_RATIO = 8
#: The attention-matching weight of larq zoo's stage 1 and 2 (multi_stage_experiments.py line 121).
ATTENTION_WEIGHT = 30.0
NORMALISATIONS = ("max", "l2")


def attention_map(a: torch.Tensor, normalise: str = "max") -> torch.Tensor:
    r"""The spatial attention map of a block's output ``a`` (N, C, H, W), one row of H·W values per example.

    .. math:: Q = \frac{1}{C} \sum_{c=1}^{C} A_c^{2}, \qquad \hat Q = Q / \max_{ij} Q_{ij}

    as larq zoo's ``_normalized_attention_vector`` (knowledge_distillation.py lines 51-57: the mean over channels
    of the squares, flattened, divided by its maximum). ``normalise="l2"`` divides by the L2 norm instead, as in
    attention transfer (Zagoruyko & Komodakis, 2017), which the method builds on. An all-zero map stays zero.
    """
    require_float_tensor(a, "a")
    require_ndim(a, "a", 4)
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    q = a.pow(2).mean(dim=1).flatten(1)
    scale = q.amax(dim=1, keepdim=True) if normalise == "max" else q.norm(dim=1, keepdim=True)
    return q / scale.clamp_min(1e-12)


def attention_loss(student: list, teacher: list, normalise: str = "max") -> torch.Tensor:
    r"""The attention matching loss between the blocks' outputs of a binary ``student`` and a real ``teacher``.

    .. math:: \mathcal{L}_{att} = \frac{1}{J} \sum_{j=1}^{J} \frac{1}{N} \sum_{n=1}^{N} \frac{1}{HW}
        \big\lVert \hat Q_S^{j,n} - \hat Q_T^{j,n} \big\rVert_2^2

    (larq zoo knowledge_distillation.py lines 81 and 149: the mean square over positions, the mean over layers,
    the mean over the batch). The teacher's maps carry no gradient (``propagate_teacher_gradients=False``).
    """
    if not isinstance(student, (list, tuple)) or not isinstance(teacher, (list, tuple)):
        raise TypeError("student and teacher must be lists of (N, C, H, W) block outputs")
    if not student or len(student) != len(teacher):
        raise ValueError(f"student and teacher must hold as many block outputs (at least 1), got {len(student)} "
                         f"and {len(teacher)}")
    losses = [(attention_map(s, normalise) - attention_map(t.detach(), normalise)).pow(2).mean()
              for s, t in zip(student, teacher)]
    return torch.stack(losses).mean()


class ChannelGate(nn.Module):
    r"""The data-driven channel re-scaling: factors in (0, 1) per output channel, computed from the block's
    real-valued input ``x`` (the output of its batch norm, before the sign), multiply the binary convolution's
    output ``y``.

    .. math:: \alpha = \sigma\big(W_2\, \mathrm{ReLU}(W_1\, \bar x)\big), \qquad \bar x_c = \frac{1}{HW}
        \sum_{ij} x_{cij}, \qquad y \mapsto y \odot \alpha

    :math:`W_1` is :math:`\lceil C_{in}/r \rceil \times C_{in}`, :math:`W_2` is :math:`C_{out} \times \lceil
    C_{in}/r \rceil`, no biases, He-normal initialisation (larq zoo real_to_bin_nets.py lines 271-305; larq floors
    C_in / r, we keep at least one unit).
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: int = GATE_RATIO):
        super().__init__()
        in_channels = require_int(in_channels, "in_channels", minimum=1)
        out_channels = require_int(out_channels, "out_channels", minimum=1)
        hidden = -(-in_channels // require_int(ratio, "ratio", minimum=1))
        self.reduce = nn.Linear(in_channels, hidden, bias=False)
        self.expand = nn.Linear(hidden, out_channels, bias=False)
        for layer in (self.reduce, self.expand):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")

    def factors(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, C_out) factors for the real-valued input ``x`` (N, C_in, H, W)."""
        require_float_tensor(x, "x")
        require_ndim(x, "x", 4)
        return torch.sigmoid(self.expand(F.relu(self.reduce(x.mean(dim=(2, 3))))))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        require_float_tensor(y, "y")
        return y * self.factors(x)[:, :, None, None]


class RealToBinaryBlock(nn.Module):
    r"""One binary half-block of the real-to-binary network (larq zoo ``half_binary_block``, real_to_bin_nets.py
    lines 208-254), from real-valued maps to real-valued maps of the same shape:

    .. math:: x \mapsto \mathrm{PReLU}\big( s(\hat x,\ \operatorname{sign}(\hat x) * \operatorname{sign}(W))
        \big) + x, \qquad \hat x = \mathrm{BN}(x)

    ``scaling`` (one of :data:`SCALINGS`) is :math:`s`: none, a learned factor per output channel starting at 1
    (XNOR-Net++, the strong baseline: larq's ``LearnedRescaleLayer`` lines 138-181, per channel only here), or the
    :class:`ChannelGate` of :math:`\hat x`. ``shortcut=False`` drops the ``+ x`` (our ablation, not a network of
    the paper). Sign inputs and weights use the clipped straight-through estimator, no bias, "same" padding.
    """

    def __init__(self, channels: int, kernel_size, scaling: str = "gate", shortcut: bool = True,
                 ratio: int = GATE_RATIO):
        super().__init__()
        channels = require_int(channels, "channels", minimum=1)
        kernel = require_pair(kernel_size, "kernel_size", minimum=1)
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
        if not isinstance(shortcut, bool):
            raise TypeError(f"shortcut must be a bool, got {type(shortcut).__name__}")
        self.scaling, self.shortcut = scaling, shortcut
        self.bn = nn.BatchNorm2d(channels)
        self.conv = qnn.QuantConv2d(channels, channels, kernel, padding=qnn.same_padding(kernel), bias=False,
                                    weight_quantizer=qnn.SignQuantizer(), input_quantizer=qnn.SignQuantizer())
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1)) if scaling == "learned" else None
        self.gate = ChannelGate(channels, channels, ratio) if scaling == "gate" else None
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_hat = self.bn(x)
        y = self.conv(x_hat)
        if self.scale is not None:
            y = y * self.scale
        if self.gate is not None:
            y = self.gate(x_hat, y)
        y = self.act(y)
        return y + x if self.shortcut else y


def comparison_conv_block(w_bits: int, a_bits: int, in_channels: int, out_channels: int, kernel_size,
                          scaling: str = "gate", shortcut: bool = True) -> RealToBinaryBlock:
    """The block of the binary CNN protocol (:func:`qteach.comparison.protocol_cnn`): a :class:`RealToBinaryBlock`
    (gated, with its shortcut unless told otherwise). Only ``w_bits = a_bits = 1`` and ``in_channels ==
    out_channels`` (the protocol's blocks keep their width; the paper's down-sampling shortcut is not needed)."""
    require_binary_layer_bits(w_bits, a_bits)
    if require_int(in_channels, "in_channels", minimum=1) != require_int(out_channels, "out_channels", minimum=1):
        raise ValueError(f"in_channels and out_channels must be equal, got {in_channels} and {out_channels}")
    return RealToBinaryBlock(in_channels, kernel_size, scaling=scaling, shortcut=shortcut)


def protocol_blocks(model: nn.Module) -> list:
    """The two method blocks of a :func:`qteach.comparison.protocol_cnn` model (positions 4 and 6)."""
    require_module(model)
    if not isinstance(model, nn.Sequential) or len(model) != 9:
        raise ValueError("model must be a comparison.protocol_cnn model (an nn.Sequential of 9 modules)")
    return [model[4], model[6]]


def forward_with_blocks(model: nn.Module, x: torch.Tensor) -> tuple:
    """``model(x)`` and the outputs of its :func:`protocol_blocks`, in order."""
    outputs = []
    hooks = [block.register_forward_hook(lambda m, i, o: outputs.append(o)) for block in protocol_blocks(model)]
    try:
        logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return logits, outputs


def train_attention_matched(student: nn.Module, data: Split, teacher: nn.Module | None = None,
                            beta: float = ATTENTION_WEIGHT, epochs: int = 10, lr: float = 3e-3,
                            batch_size: int = 256, seed: int = 0, weight_clip: float | None = 1.0) -> History:
    r"""Train ``student`` (in place) on :math:`\mathcal{L}_{CE} + \beta\, \mathcal{L}_{att}` to the frozen
    ``teacher``'s block outputs (cross-entropy alone if ``teacher`` is None or ``beta = 0``): Adam, mini-batches
    shuffled by a generator seeded with ``seed``, the latent binary weights clipped to ``weight_clip``. The
    teacher is frozen (eval mode), so its block outputs are computed once, before the first step."""
    require_module(student, "student")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    if teacher is not None:
        require_module(teacher, "teacher")
        teacher.eval()
        teacher.requires_grad_(False)
    beta = require_non_negative_number(beta, "beta")
    targets = None
    if teacher is not None and beta > 0:  # the frozen teacher's block outputs, computed once
        with torch.no_grad():
            targets = forward_with_blocks(teacher, data.x_train)[1]

    def batch_loss(idx, xb, yb):
        logits, maps = forward_with_blocks(student, xb)
        loss = F.cross_entropy(logits, yb)
        return loss if targets is None else loss + beta * attention_loss(maps, [t[idx] for t in targets])

    return fit_loss(student, data, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                    weight_clip=weight_clip)


def student_method(scaling: str = "gate", shortcut: bool = True):
    """A :class:`qteach.comparison.Method` whose CNN blocks are :class:`RealToBinaryBlock` (``scaling``,
    ``shortcut``), to build students with :func:`qteach.comparison.protocol_cnn`."""
    from qteach import comparison

    require_str(scaling, "scaling")

    def block(w, a, cin, cout, kernel):
        return comparison_conv_block(w, a, cin, cout, kernel, scaling=scaling, shortcut=shortcut)
    return comparison.Method("Real-to-Binary block", "real_to_binary", ((1, 1),), conv_block=block)


def protocol_post_training(teacher: nn.Module, w_bits: int, data: Split, seed: int, protocol) -> nn.Module:
    """For :class:`qteach.comparison.Method` ``post_training`` on the binary CNN page: a gated real-to-binary
    student (:func:`comparison_conv_block`) trained in a single stage with the protocol's epochs, learning rate
    and batch size on cross-entropy + :data:`ATTENTION_WEIGHT` x the attention loss to ``teacher``, the trained
    full-precision protocol CNN of the same seed."""
    from qteach import comparison

    require_binary_layer_bits(w_bits, 1)
    set_seed(seed)
    student = comparison.protocol_cnn(student_method(), 1, 1, data.x_train.shape[1])
    train_attention_matched(student, data, teacher=teacher, beta=ATTENTION_WEIGHT, epochs=protocol.epochs,
                            lr=protocol.lr, batch_size=protocol.batch_size, seed=seed)
    return student
