r"""CI-BCNN: sign flips of binary feature maps, and the interacted bitcount that corrects them.

Wang, Lu, Tao, Zhou and Tian (CVPR 2019) observe that the XNOR-bitcount of a binary convolution often has the
*opposite sign* of the full-precision convolution it replaces ("inconsistent signs in binary feature maps"). They
mine a directed graph of *channel-wise interactions* with a reinforcement-learning agent and impose channel-wise
priors on the feature maps through an *interacted bitcount*: a channel's bitcount is pushed up or down according
to the binary outputs of the channels that interact with it.

What could be read for this book: the abstract and the opening of the introduction (CVF open access; a copy of
the PDF), and the official code, https://github.com/ZiweiWangTHU/CI-BCNN (PyTorch, CIFAR-10 ResNet-20). The
method section's equations could not be read, so the formulas below are transcribed from the official code and
cited by file and line; equation numbers of the paper are not given.

**Sign inconsistency** (ours, the quantity the abstract names). For a layer with real input :math:`x` and latent
weights :math:`W`, the binary layer computes :math:`y = \operatorname{sign}(x) \ast \operatorname{sign}(W)` (an
integer bitcount, :func:`qteach.bitops.binary_conv2d`) where the float layer computes :math:`f = x \ast W`. The
flip rate is the fraction of positions with :math:`\operatorname{sign}(y) \ne \operatorname{sign}(f)`
(:func:`flip_rate`). Positive scaling factors (XNOR-Net's :math:`\alpha`, :math:`K`) cannot change it.

**Interacted bitcount** (``models/binarized_modules.py``, ``BinarizeConv2d.forward`` lines 58-61 and ``fp_add``
lines 68-109). For each mined edge :math:`i \to j` with influence :math:`s_{ij} \in \{-1, +1\}`, in the order the
edges were mined, the bitcount of channel :math:`j` at every pixel moves by a constant :math:`c` when channel
:math:`i`'s bitcount there is confidently signed (beyond a threshold :math:`\tau`):

.. math:: y_j \leftarrow y_j + c\, s_{ij}\, \big(1[y_i \ge \tau] - 1[y_i \le -\tau]\big)

The official code uses :math:`\tau = 200`, :math:`c = 100` (lines 71 and 96-97) on bitcounts of fan-in
:math:`80 \cdot 9 = 720`; :func:`official_constants` scales these ratios to another fan-in (ours). Its backward
pass is the identity on :math:`y_j` (line 109). Only integer comparisons and additions: the result is bit-exact
on the integer bitcount. For a negative edge the official line 103 subtracts :math:`c\,(1[y_i \ge \tau] +
1[y_i \le -\tau])` (both terms added, not subtracted), which moves :math:`y_j` down whatever the sign of
:math:`y_i`; we use the sign-symmetric form above and say so (tests/papers/test_channel_wise_interactions.py
transcribes both official lines).

**Graph mining, simplified** (ours). The paper's agent adds and removes edges and is rewarded by the change of
the loss and an information term (official ``main.py``, ``dependency_mining``). Here :func:`greedy_interactions`
adds, one at a time, the edge :math:`(i, j, s)` that removes the most sign flips on a calibration batch, and stops
when no edge helps or after ``max_edges``.

References:

- Z. Wang, J. Lu, C. Tao, J. Zhou, Q. Tian, *Learning Channel-wise Interactions for Binary Convolutional Neural
  Networks*, CVPR 2019, pp. 568-577.
- Official code: https://github.com/ZiweiWangTHU/CI-BCNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops
from qteach._validate import require_int, require_ndim, require_no_nan, require_tensor
from qteach.papers import xnor_net

__all__ = [
    "InteractedBitcount",
    "book_constants",
    "check_edges",
    "ci_cnn",
    "edge_ops",
    "flip_rate",
    "greedy_interactions",
    "interacted_bitcount",
    "interaction_prior",
    "layer_maps",
    "mine_network",
    "official_constants",
    "random_interactions",
]


def _require_maps(y, name: str) -> torch.Tensor:
    require_tensor(y, name)
    require_ndim(y, name, 4)
    require_no_nan(y, name)
    return y


def check_edges(edges, channels: int) -> torch.Tensor:
    """``edges`` as an int64 (E, 3) tensor of rows ``(source, target, sign)``: channels in ``[0, channels)``,
    source != target, sign +1 or -1. Anything else raises ``TypeError``/``ValueError`` naming ``edges``."""
    channels = require_int(channels, "channels", minimum=1)
    if isinstance(edges, (list, tuple)):
        edges = torch.tensor(edges, dtype=torch.int64).reshape(-1, 3) if len(edges) else torch.zeros(0, 3)
    require_tensor(edges, "edges")
    if edges.numel() == 0:
        edges = edges.reshape(0, 3).to(torch.int64)
    if edges.is_floating_point() or edges.dtype == torch.bool or edges.dim() != 2 or edges.shape[1] != 3:
        raise ValueError(f"edges must be an integer (E, 3) tensor of (source, target, sign), got {edges.dtype} "
                         f"{tuple(edges.shape)}")
    edges = edges.to(torch.int64)
    if ((edges[:, :2] < 0) | (edges[:, :2] >= channels)).any():
        raise ValueError(f"edges must name channels in [0, {channels})")
    if (edges[:, 0] == edges[:, 1]).any():
        raise ValueError("edges must not connect a channel to itself")
    if (edges[:, 2].abs() != 1).any():
        raise ValueError("edges must have sign +1 or -1 in their third column")
    return edges


def flip_rate(y_float: torch.Tensor, y_binary: torch.Tensor) -> float:
    r"""Fraction of positions whose sign differs: :math:`\operatorname{mean}\,
    1[\operatorname{sign}(f) \ne \operatorname{sign}(y)]`, with :math:`\operatorname{sign}(0) = +1`."""
    require_tensor(y_float, "y_float")
    require_tensor(y_binary, "y_binary")
    if y_float.shape != y_binary.shape:
        raise ValueError(f"y_float and y_binary must have the same shape, got {tuple(y_float.shape)} and "
                         f"{tuple(y_binary.shape)}")
    return (binary.sign(y_float) != binary.sign(y_binary)).float().mean().item()


def interaction_prior(y: torch.Tensor, threshold) -> torch.Tensor:
    r"""The ternary prior of a channel: :math:`1[y \ge \tau] - 1[y \le -\tau] \in \{-1, 0, +1\}`, in the dtype
    of ``y`` (official ``fp_add``, ``binarized_modules.py`` line 96)."""
    require_tensor(y, "y")
    threshold = require_int(threshold, "threshold", minimum=1)
    return (y >= threshold).to(y.dtype) - (y <= -threshold).to(y.dtype)


def interacted_bitcount(y: torch.Tensor, edges, threshold, strength) -> torch.Tensor:
    r"""The interacted bitcount of (N, C, H, W) bitcounts ``y``, edges applied in order, each reading the
    current maps (as the official in-place loop, ``binarized_modules.py`` lines 58-61):

    .. math:: y_j \leftarrow y_j + c\, s_{ij}\, \big(1[y_i \ge \tau] - 1[y_i \le -\tau]\big)
        \quad \text{for each edge } (i, j, s_{ij})

    ``threshold`` is :math:`\tau`, ``strength`` :math:`c` (integers >= 1). An integer ``y`` stays integer."""
    _require_maps(y, "y")
    edges = check_edges(edges, y.shape[1])
    threshold = require_int(threshold, "threshold", minimum=1)
    strength = require_int(strength, "strength", minimum=1)
    out = y.clone()
    for src, dst, s in edges.tolist():
        out[:, dst] += strength * s * interaction_prior(out[:, src], threshold)
    return out


def official_constants(fan_in) -> tuple[int, int]:
    r"""``(threshold, strength)`` for a bitcount of ``fan_in`` products: the official 200 and 100 for fan-in
    :math:`80 \cdot 9 = 720` (``binarized_modules.py`` lines 71 and 96-97), scaled linearly and rounded (ours)."""
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    return max(1, round(200 * fan_in / 720)), max(1, round(100 * fan_in / 720))


def book_constants(fan_in) -> tuple[int, int]:
    r"""``(threshold, strength)`` used in this book's digits network (ours): both :math:`\approx` fan-in / 16,
    about half the spread of the trained bitcounts there. The official ratios (:func:`official_constants`) put
    :math:`\tau` near three such spreads, where almost no pixel is confident."""
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    return max(1, round(fan_in / 16)), max(1, round(fan_in / 16))


def greedy_interactions(y_binary: torch.Tensor, y_float: torch.Tensor, threshold, strength,
                        max_edges: int = 8) -> tuple[torch.Tensor, list]:
    r"""Mine edges greedily (ours, in place of the paper's RL agent): repeatedly add the edge
    :math:`(i, j, s)` whose interacted bitcount removes the most sign flips against ``y_float``; stop when no
    edge removes any, or after ``max_edges``. Ties go to the lowest (sign, source, target). Returns the
    int64 (E, 3) edges and the flip count before each edge and after the last."""
    _require_maps(y_binary, "y_binary")
    _require_maps(y_float, "y_float")
    if y_float.shape != y_binary.shape:
        raise ValueError(f"y_float and y_binary must have the same shape, got {tuple(y_float.shape)} and "
                         f"{tuple(y_binary.shape)}")
    threshold = require_int(threshold, "threshold", minimum=1)
    strength = require_int(strength, "strength", minimum=1)
    max_edges = require_int(max_edges, "max_edges", minimum=0)
    c = y_binary.shape[1]
    target = binary.sign(y_float).transpose(0, 1).reshape(c, -1)  # (C, M)
    out, edges = y_binary.clone(), []

    def wrong(v):  # 1 where the sign of v disagrees with the float sign, as float counts
        return (binary.sign(v) != target).float()

    flips = [int(wrong(out.transpose(0, 1).reshape(c, -1)).sum())]
    for _ in range(max_edges):
        cur = out.transpose(0, 1).reshape(c, -1).float()
        up = wrong(cur) - wrong(cur + strength)  # flips removed at a pixel if y_j moves up by c
        down = wrong(cur) - wrong(cur - strength)
        pos, neg = (cur >= threshold).float(), (cur <= -threshold).float()  # prior of each source i
        gains = torch.stack([pos @ up.T + neg @ down.T, pos @ down.T + neg @ up.T]).round().long()
        gains[:, torch.arange(c), torch.arange(c)] = -1  # (sign, source, target); no self-edges
        best = int(gains.argmax())
        if int(gains.flatten()[best]) <= 0:
            break
        s, src, dst = (1, -1)[best // (c * c)], best % (c * c) // c, best % c
        edges.append((src, dst, s))
        out = interacted_bitcount(out, [(src, dst, s)], threshold, strength)
        flips.append(flips[-1] - int(gains.flatten()[best]))
    return check_edges(edges, c), flips


def random_interactions(channels, count, seed: int = 0) -> torch.Tensor:
    """``count`` random edges ``(source, target, sign)`` over ``channels`` channels, the control for
    :func:`greedy_interactions` (ours)."""
    channels = require_int(channels, "channels", minimum=2)
    count = require_int(count, "count", minimum=0)
    g = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    src = torch.randint(channels, (count,), generator=g)
    dst = (src + torch.randint(1, channels, (count,), generator=g)) % channels
    sign = torch.randint(2, (count,), generator=g) * 2 - 1
    return torch.stack([src, dst, sign], 1)


def edge_ops(edges, out_pixels) -> int:
    """Extra integer operations of the interacted bitcount per sample: two comparisons and one addition per
    edge and output pixel (ours; the XNOR-popcounts of the layer are unchanged)."""
    edges = require_tensor(edges, "edges")
    return 3 * len(edges) * require_int(out_pixels, "out_pixels", minimum=1)


class InteractedBitcount(nn.Module):
    r"""The interacted bitcount as a layer after a binary convolution. Forward: :func:`interacted_bitcount`
    with the edges held in the buffer ``edges`` (none at first: the identity); backward: the identity, as the
    official ``fp_add.backward`` (``binarized_modules.py`` line 109)."""

    def __init__(self, channels: int, threshold: int, strength: int):
        super().__init__()
        self.channels = require_int(channels, "channels", minimum=1)
        self.threshold = require_int(threshold, "threshold", minimum=1)
        self.strength = require_int(strength, "strength", minimum=1)
        self.register_buffer("edges", torch.zeros(0, 3, dtype=torch.int64))

    def set_edges(self, edges) -> None:
        self.edges = check_edges(edges, self.channels)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if len(self.edges) == 0:
            return y
        fixed = interacted_bitcount(y.detach(), self.edges, self.threshold, self.strength)
        return y + (fixed - y.detach())

    def extra_repr(self) -> str:
        return f"channels={self.channels}, threshold={self.threshold}, strength={self.strength}, " \
               f"edges={len(self.edges)}"


def ci_cnn(channels: tuple = (16, 32), seed: int = 0) -> nn.Sequential:
    r"""The book's binary CNN for 8x8 digits (:func:`qteach.papers.xnor_net.xnor_cnn`, variant ``"binary"``:
    sign inputs, sign weights, no scaling) with an :class:`InteractedBitcount` after each binary convolution,
    its :math:`\tau, c` from :func:`book_constants`. Without edges it computes exactly the plain network."""
    model = xnor_net.xnor_cnn("binary", channels=channels, seed=seed)
    for index in BINARY_LAYERS:
        block = model[index]
        conv = block[1]
        tau, c = book_constants(conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])
        model[index] = nn.Sequential(block[0], conv, InteractedBitcount(conv.out_channels, tau, c), *block[2:])
    return model


BINARY_LAYERS = (3, 4)  # the two binary blocks of :func:`ci_cnn`


def layer_maps(model: nn.Sequential, index: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bitcount, float)`` maps of the binary convolution in block ``index`` of a :func:`ci_cnn` on ``x`` (eval
    mode, edges of earlier blocks active): the exact int32 XNOR-popcount :func:`qteach.bitops.binary_conv2d` of
    the block's real input and latent weights, and the float convolution of the same two tensors."""
    if not isinstance(model, nn.Sequential) or index not in BINARY_LAYERS:
        raise ValueError(f"model must be a ci_cnn and index one of {BINARY_LAYERS}, got {index!r}")
    require_tensor(x, "x")
    conv, got = model[index][1], {}
    hook = conv.register_forward_hook(lambda m, inputs, out: got.update(x=inputs[0].detach()))
    model.eval()
    with torch.no_grad():
        model(x)
    hook.remove()
    w = conv.weight.detach()
    return bitops.binary_conv2d(got["x"], w, padding=1), F.conv2d(got["x"], w, padding=1)


def mine_network(model: nn.Sequential, x: torch.Tensor, max_edges: int = 16) -> list:
    """Mine each binary block of a :func:`ci_cnn` in turn with :func:`greedy_interactions` on calibration
    inputs ``x`` and install the edges; returns the flip counts of each block."""
    max_edges = require_int(max_edges, "max_edges", minimum=0)
    history = []
    for index in BINARY_LAYERS:
        y_binary, y_float = layer_maps(model, index, x)
        layer = model[index][2]
        edges, flips = greedy_interactions(y_binary, y_float, layer.threshold, layer.strength, max_edges)
        layer.set_edges(edges)
        history.append(flips)
    return history
