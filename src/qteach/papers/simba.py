r"""SIMBA: a skyrmionic in-memory binary neural network accelerator (Miriyala, Vishwanath and Fong, 2020).

SIMBA stores a BNN's binary weights in a non-volatile skyrmionic memory: a skyrmion present or absent in a
ferromagnetic film. A spin-torque nano-oscillator (STNO) next to the film emits spin waves; a skyrmion back-scatters
them, and the interference changes the STNO's steady-state oscillation, which is how a cell is read and computed
on. The abstract reports 26.7 mJ and 2.7 ms per inference of a VGG-like BNN, up to 97.07% energy saving with a
3.73x speedup against other accelerators at similar accuracy, and an accuracy of 88.5% ± 1% under the device's
possible stochastic behaviour.

**What we could read: the abstract and the first paragraph of the introduction** (arXiv 2003.05132, via ar5iv).
The array, the read circuit, the device's error rates and the per-operation energies were not available. So
everything below except the abstract's figures (:data:`PAPER`) is **our reconstruction**, labelled (S1)-(S4):

- (S1) storage: weight :math:`+1` is a cell with a skyrmion, :math:`-1` a cell without;
- (S2) read and compute: each cell's STNO reports its bit, the periphery XNORs it with the input bit and counts,
  :math:`y = 2\,\operatorname{popcount}(\operatorname{xnor}) - K`, equal to ``bitops.xnor_matmul`` when ideal;
- (S3) write errors, drawn once per chip: a skyrmion fails to nucleate (present -> absent) with rate
  :math:`p_\text{miss}`, or an unwanted one appears (absent -> present) with rate :math:`p_\text{extra}`;
- (S4) read errors, drawn afresh at every read (every input): the STNO's output is misjudged with rate
  :math:`p_\text{read}`.

Reference: V. P. K. Miriyala, K. R. Vishwanath, X. Fong, *SIMBA: A Skyrmionic In-Memory Binary Neural Network
Accelerator*, arXiv 2003.05132, 2020.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import hw
from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_labelled_data,
    require_module,
    require_positive_number,
    require_tensor,
)

__all__ = ["PAPER", "VGG_LIKE_BNN", "accuracy_under_errors", "cost_from_paper", "read_cells",
           "read_errors_on_sums", "simba_forward", "skyrmion_xnor_popcount", "store_weights", "vgg_like_macs",
           "write_cells"]

#: The figures of the abstract (arXiv 2003.05132): one inference of a VGG-like BNN, and the accuracy under the
#: device's stochastic behaviour. Nothing else is the paper's.
PAPER = {"energy_mj": 26.7, "latency_ms": 2.7, "energy_saving": 0.9707, "speedup": 3.73, "accuracy": 0.885,
         "accuracy_pm": 0.01}

#: Our **assumption** for "a VGG-like BNN": the CIFAR-10 network of Courbariaux, Hubara et al. (2016), 32 x 32 x 3
#: input, (2 x 128C3)-MP2-(2 x 256C3)-MP2-(2 x 512C3)-MP2-1024FC-1024FC-10. The abstract does not name it.
VGG_LIKE_BNN = {"input": (3, 32), "conv": [(3, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)],
                "fc": [(8192, 1024), (1024, 1024), (1024, 10)]}


def _require_rate(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _require_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _require_signs(t: torch.Tensor, name: str) -> torch.Tensor:
    require_float_tensor(t, name)
    if not bool(((t == 1) | (t == -1)).all()):
        raise ValueError(f"{name} must hold -1 and +1 only")
    return t


def store_weights(w: torch.Tensor) -> torch.Tensor:
    r"""The skyrmion map (bool, same shape) of binary weights ``w`` in :math:`\pm 1` (S1, ours):

    .. math:: s_{mk} = [\,w_{mk} = +1\,] \qquad (\text{skyrmion present} \Leftrightarrow +1)
    """
    _require_signs(w, "w")
    return w > 0


def write_cells(present: torch.Tensor, p_miss: float = 0.0, p_extra: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The skyrmion map a chip actually holds after writing ``present`` (S3, ours): a wanted skyrmion is missing
    with probability :math:`p_\text{miss}`, an unwanted one appears with probability :math:`p_\text{extra}`.

    .. math:: \tilde s = s \wedge \lnot m \;\vee\; \lnot s \wedge e, \qquad m \sim B(p_\text{miss}),\;
        e \sim B(p_\text{extra})
    """
    require_tensor(present, "present")
    if present.dtype != torch.bool:
        raise TypeError(f"present must be a bool tensor, got {present.dtype}")
    p_miss, p_extra = _require_rate(p_miss, "p_miss"), _require_rate(p_extra, "p_extra")
    _require_generator(generator)
    u = torch.rand(present.shape, generator=generator, dtype=torch.float64)
    return torch.where(present, u >= p_miss, u < p_extra)


def read_cells(present: torch.Tensor, reads: int, p_read: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``reads`` STNO read-outs (bool, ``(reads, *present.shape)``) of a skyrmion map (S4, ours): each read of
    each cell is misjudged independently with probability :math:`p_\text{read}`.

    .. math:: \hat s^{(n)} = s \oplus r^{(n)}, \qquad r^{(n)} \sim B(p_\text{read})
    """
    require_tensor(present, "present")
    if present.dtype != torch.bool:
        raise TypeError(f"present must be a bool tensor, got {present.dtype}")
    reads = require_int(reads, "reads", minimum=1)
    p_read = _require_rate(p_read, "p_read")
    _require_generator(generator)
    if p_read == 0.0:
        return present.expand(reads, *present.shape)
    flips = torch.rand((reads, *present.shape), generator=generator, dtype=torch.float64) < p_read
    return present ^ flips


def skyrmion_xnor_popcount(x: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    r"""The binary dot products (N, M) int64 of inputs ``x`` (N, K) in :math:`\pm 1` with the read-out skyrmion bits
    ``read`` (M, K), one map for all inputs, or (N, M, K), one read per input (S2, ours):

    .. math:: y_{nm} = 2\,a_{nm} - K, \qquad a_{nm} = \sum_k \operatorname{xnor}(b_{nk}, \hat s_{mk})
        = \sum_k b_{nk} \hat s_{mk} + \bar b_{nk} \bar{\hat s}_{mk}, \quad b = [x = +1]

    With an ideal read (``read = store_weights(w)``) this equals ``bitops.xnor_matmul(x, w)``.
    """
    _require_signs(x, "x")
    require_tensor(read, "read")
    if read.dtype != torch.bool:
        raise TypeError(f"read must be a bool tensor, got {read.dtype}")
    if x.dim() != 2 or read.dim() not in (2, 3) or read.shape[-1] != x.shape[1] or (
            read.dim() == 3 and read.shape[0] != x.shape[0]):
        raise ValueError(f"x and read must be (N, K) and (M, K) or (N, M, K), got {tuple(x.shape)} and "
                         f"{tuple(read.shape)}")
    b, s = (x > 0).double(), read.double()                   # input bits, and what each STNO reported
    both = "nk,mk->nm" if read.dim() == 2 else "nk,nmk->nm"
    agree = torch.einsum(both, b, s) + torch.einsum(both, 1 - b, 1 - s)   # popcount of the XNOR
    return 2 * agree.long() - x.shape[1]


def read_errors_on_sums(y: torch.Tensor, k: int, p_read: float = 0.0,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The sums ``y`` (N, M) of :func:`skyrmion_xnor_popcount` after read errors (S4) at rate :math:`p_\text{read}`,
    drawn without materialising the (N, M, K) reads: of the :math:`a = (K + y)/2` agreeing cells, :math:`f_a`
    are misread, of the :math:`K - a` others :math:`f_d`, and each misread cell moves the sum by 2.

    .. math:: \hat y = y - 2 f_a + 2 f_d, \qquad f_a \sim \operatorname{Bin}(a, p_\text{read}),\;
        f_d \sim \operatorname{Bin}(K - a, p_\text{read})

    Same distribution as ``skyrmion_xnor_popcount(x, read_cells(s, N, p_read))``.
    """
    require_tensor(y, "y")
    k = require_int(k, "k", minimum=1)
    p_read = _require_rate(p_read, "p_read")
    _require_generator(generator)
    if bool((y.abs() > k).any()) or bool(((y + k) % 2 != 0).any()):
        raise ValueError("y must hold sums of k terms +-1 (|y| <= k, y + k even)")
    agree = ((k + y) // 2).double()
    prob = torch.full_like(agree, p_read)
    f_a = torch.binomial(agree, prob, generator=generator)
    f_d = torch.binomial(k - agree, prob, generator=generator)
    return y - 2 * f_a.long() + 2 * f_d.long()


def simba_forward(model: nn.Sequential, x: torch.Tensor, p_miss: float = 0.0, p_extra: float = 0.0,
                  p_read: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Logits of a BNN ``nn.Sequential`` whose binary ``QuantLinear`` layers run on one SIMBA chip written with
    write errors (S3) and read with read errors (S4); every other layer runs as usual (eval mode):

    .. math:: z = \operatorname{xnor\_popcount}(x, \tilde s) + b \quad (\text{then read errors on } z - b)

    With no errors the logits equal ``model(x)`` (up to float32 rounding of the linear layers).
    """
    require_module(model)
    require_float_tensor(x, "x")
    p_miss, p_extra, p_read = (_require_rate(p, n) for p, n in ((p_miss, "p_miss"), (p_extra, "p_extra"),
                                                                 (p_read, "p_read")))
    _require_generator(generator)
    model.eval()
    with torch.no_grad():
        for layer in model:
            if not isinstance(layer, qnn.QuantLinear):
                x = layer(x)
                continue
            x = _require_signs(layer.quantized_input(x), "binary layer inputs")
            chip = write_cells(store_weights(_require_signs(layer.quantized_weight(), "binary layer weights")),
                               p_miss, p_extra, generator)
            y = skyrmion_xnor_popcount(x, chip)
            if p_read > 0:
                y = read_errors_on_sums(y, x.shape[1], p_read, generator)
            x = y.to(x.dtype) + (0 if layer.bias is None else layer.bias)
    return x


def accuracy_under_errors(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, draws: int = 5, seed: int = 0,
                          **errors) -> torch.Tensor:
    r"""Test accuracy (``draws``,) float64 of ``model`` on ``draws`` SIMBA chips, each drawn with ``errors``
    (``p_miss``, ``p_extra``, ``p_read`` of :func:`simba_forward`) from one ``torch.Generator`` seeded with
    ``seed``."""
    require_labelled_data(x, y)
    draws = require_int(draws, "draws", minimum=1)
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    return torch.tensor([float((simba_forward(model, x, generator=generator, **errors).argmax(1) == y)
                               .double().mean()) for _ in range(draws)], dtype=torch.float64)


def vgg_like_macs(net: dict | None = None) -> list[int]:
    r"""Multiply-accumulates of each layer of a VGG-like network (default :data:`VGG_LIKE_BNN`, our assumption):
    3x3 convolutions with 'same' padding, a 2x2 max-pool after every second one, then the fully connected layers.

    .. math:: \text{MACs}_\text{conv} = C_\text{in} C_\text{out}\, 9\, H W, \qquad
        \text{MACs}_\text{fc} = n_\text{in} n_\text{out}
    """
    net = VGG_LIKE_BNN if net is None else net
    if not isinstance(net, dict) or not {"input", "conv", "fc"} <= set(net):
        raise TypeError("net must be a dict with keys 'input', 'conv' and 'fc'")
    size, macs = net["input"][1], []
    for i, (c_in, c_out) in enumerate(net["conv"]):
        macs.append(hw.conv2d_macs(c_in, c_out, 3, size, size))
        size = size // 2 if i % 2 == 1 else size              # max-pool after every second convolution
    return macs + [hw.linear_macs(n_in, n_out) for n_in, n_out in net["fc"]]


def cost_from_paper(macs: int, paper_macs: int, energy_mj: float = PAPER["energy_mj"],
                    latency_ms: float = PAPER["latency_ms"]) -> dict:
    r"""Energy and latency of a network of ``macs`` MACs at the paper's cost per MAC, if the paper's network has
    ``paper_macs`` MACs (our arithmetic, assuming cost proportional to MACs):

    .. math:: e = \frac{E}{\text{MACs}_\text{paper}}, \quad t = \frac{T}{\text{MACs}_\text{paper}}, \qquad
        E_\text{ours} = e\,\text{MACs}, \quad T_\text{ours} = t\,\text{MACs}
    """
    macs = require_int(macs, "macs", minimum=0)
    paper_macs = require_int(paper_macs, "paper_macs", minimum=1)
    energy_mj = require_positive_number(energy_mj, "energy_mj")
    latency_ms = require_positive_number(latency_ms, "latency_ms")
    pj_per_mac, ps_per_mac = energy_mj * 1e9 / paper_macs, latency_ms * 1e9 / paper_macs
    return {"pj_per_mac": pj_per_mac, "ps_per_mac": ps_per_mac, "energy_uj": pj_per_mac * macs * 1e-6,
            "latency_us": ps_per_mac * macs * 1e-6}
