r"""A binary neural network on binary memristors, and how device errors change its accuracy (2020).

*Design of High Robustness BNN Inference Accelerator Based on Binary Memristors*, 2020 (listed as IEEE Trans.
Electron Devices, IEEE Xplore document 9112690, by the awesome-model-quantization list; authors not verified).

**What could be read.** The abstract only (OpenAlex W3035117791, shown on concepedia without its title; the match
to this title rests on its content). It says: a BNN with :math:`\pm 1` weights and :math:`0/{+1}` neurons is mapped
on *binary* memristors (a W/AlOx/Al2O3/Pt device) with a "select column scheme"; it reaches 98.31% on MNIST; a
*bit error model* is proposed to study device errors; the accuracy stays above 90% under a high invalid-device
rate, under an input swing of 0.21 standard deviation, and under 7% salt noise on the binary input, while device
variation has a trivial effect (:data:`PAPER_ABSTRACT`). The circuit of the select column scheme, the device's
conductances and the network were not read. Everything below is **our reconstruction**; the labels (M1)-(M4) are
ours, and every device constant is an assumption (:data:`ASSUMED_DEVICE`).

**Mapping (M1).** One memristor per weight, conductances in units of the high-resistance state (HRS) :math:`G_{off}
= 1` and an ON/OFF ratio :math:`r`: :math:`G_{ki} = r` for :math:`w_{ik} = +1` (low-resistance state, LRS) and
:math:`G_{ki} = 1` for :math:`w_{ik} = -1`, i.e. :math:`G = 1 + (r - 1)(w + 1)/2`.

**Sensing (M2).** The neuron inputs :math:`u_k \in \{0, 1\}` drive the rows with voltage :math:`v_k = u_k` (units of
the read voltage); column :math:`i` collects :math:`I_i = \sum_k v_k G_{ki}`. Two reference columns on the same rows,
one all-LRS and one all-HRS, give :math:`I_{on} = r \sum_k v_k` and :math:`I_{off} = \sum_k v_k`, and

.. math:: s_i = \frac{2 I_i - I_{on} - I_{off}}{r - 1} = \sum_k u_k w_{ik} \quad\text{(ideal devices)}.

A BNN layer with :math:`\pm 1` inputs :math:`x = 2u - 1` needs :math:`x \cdot w_i = 2 s_i - \sum_k w_{ik}`: the
second term is a constant of the column, folded with the bias and batch norm into the neuron's threshold.

**Device errors (M3), the bit error model as we read it.** Each cell is independently stuck at LRS (rate
:math:`p_{on}`) or at HRS (rate :math:`p_{off}`), whatever it was programmed to; then every conductance is
multiplied by a log-normal factor :math:`e^{\sigma \varepsilon - \sigma^2/2}`, :math:`\varepsilon \sim
\mathcal N(0, 1)`, whose mean is 1 (device-to-device variation, fixed for one chip; a mean shift is a separate
error that a calibrated reference would absorb).

**Input non-idealities (M4).** Salt noise turns each 0 input into 1 with probability :math:`q`; an input swing adds
:math:`\sigma_v \varepsilon` to every row voltage (drawn per input vector). The reference columns see the same rows.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_module,
    require_no_nan,
    require_non_negative_number,
    require_positive_number,
    require_tensor,
)

__all__ = [
    "ASSUMED_DEVICE",
    "PAPER_ABSTRACT",
    "accuracy_under_errors",
    "cell_counts",
    "crossbar_dot",
    "device_errors",
    "input_voltages",
    "memristor_forward",
    "program_crossbar",
]

#: The numbers of the abstract (OpenAlex W3035117791): MNIST accuracy, the accuracy the network keeps "even under"
#: each non-ideality, the input swing (standard deviation) and the salt-noise rate where that was measured.
PAPER_ABSTRACT = {"mnist_accuracy": 0.9831, "accuracy_floor": 0.90, "input_swing_std": 0.21, "salt_noise": 0.07}

#: Device constants of our model. ALL are assumptions (the paper's device data were not read): conductances in
#: units of the HRS conductance, an ON/OFF ratio of 10 (a modest value for oxide memristors), read voltage 1.
ASSUMED_DEVICE = {"on_off_ratio": 10.0, "g_off": 1.0, "v_read": 1.0}


def _require_ratio(on_off) -> float:
    on_off = require_positive_number(on_off, "on_off")
    if on_off <= 1:
        raise ValueError(f"on_off must be > 1 (LRS conducts more than HRS), got {on_off}")
    return on_off


def _require_rate(value, name: str) -> float:
    value = require_non_negative_number(value, name)
    if value > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return value


def _require_generator(generator):
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _require_signs(w: torch.Tensor, name: str) -> torch.Tensor:
    require_float_tensor(w, name)
    if not bool(((w == 1) | (w == -1)).all()):
        raise ValueError(f"{name} must hold -1 and +1 only")
    return w


def program_crossbar(w: torch.Tensor, on_off: float = 10.0) -> torch.Tensor:
    r"""Conductances (K, M) float64 of binary weights ``w`` (M, K) in :math:`\pm 1`, one cell per weight (M1):

    .. math:: G_{ki} = 1 + (r - 1)\,\frac{w_{ik} + 1}{2} \in \{1, r\}

    in units of the HRS conductance; ``on_off`` is :math:`r`. Our reconstruction (module docstring).
    """
    _require_signs(w, "w")
    if w.dim() != 2:
        raise ValueError(f"w must be (M, K), got shape {tuple(w.shape)}")
    on_off = _require_ratio(on_off)
    return 1 + (on_off - 1) * (w.double().T + 1) / 2


def device_errors(g: torch.Tensor, on_off: float = 10.0, stuck_on: float = 0.0, stuck_off: float = 0.0,
                  sigma: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One chip's conductances: cells stuck at LRS (rate ``stuck_on``) or HRS (rate ``stuck_off``), then
    log-normal device-to-device variation (M3):

    .. math:: G'_{ki} = \tilde G_{ki}\, e^{\sigma \varepsilon_{ki} - \sigma^2/2}, \qquad
        \tilde G_{ki} = \begin{cases} r & \text{stuck-ON}\\ 1 & \text{stuck-OFF}\\ G_{ki} & \text{otherwise}
        \end{cases}

    ``g`` float64 conductances from :func:`program_crossbar`. Rates are our bit error model's parameters.
    """
    require_float_tensor(g, "g")
    require_no_nan(g, "g")
    on_off = _require_ratio(on_off)
    stuck_on, stuck_off = _require_rate(stuck_on, "stuck_on"), _require_rate(stuck_off, "stuck_off")
    if stuck_on + stuck_off > 1:
        raise ValueError(f"stuck_on + stuck_off must be at most 1, got {stuck_on + stuck_off}")
    sigma = require_non_negative_number(sigma, "sigma")
    _require_generator(generator)
    draw = torch.rand(g.shape, generator=generator, dtype=torch.float64)
    g = torch.where(draw < stuck_on, on_off, torch.where(draw < stuck_on + stuck_off, 1.0, g.double()))
    return g * torch.exp(sigma * torch.randn(g.shape, generator=generator, dtype=torch.float64) - sigma**2 / 2)


def input_voltages(u: torch.Tensor, swing: float = 0.0, salt: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Row voltages (N, K) float64 for binary neuron outputs ``u`` in :math:`\{0, 1\}` (M4): salt noise sets each
    0 to 1 with probability ``salt``, then every row gets Gaussian swing of standard deviation ``swing``:

    .. math:: v_k = \max(u_k, [\xi_k < q]) + \sigma_v\,\varepsilon_k, \qquad \xi_k \sim U(0, 1)
    """
    require_float_tensor(u, "u")
    if not bool(((u == 0) | (u == 1)).all()):
        raise ValueError("u must hold 0 and 1 only")
    swing, salt = require_non_negative_number(swing, "swing"), _require_rate(salt, "salt")
    _require_generator(generator)
    salted = torch.rand(u.shape, generator=generator, dtype=torch.float64) < salt
    v = torch.where(salted, 1.0, u.double())
    return v + swing * torch.randn(u.shape, generator=generator, dtype=torch.float64)


def crossbar_dot(v: torch.Tensor, g: torch.Tensor, on_off: float = 10.0) -> torch.Tensor:
    r"""The sensed dot products (N, M) float64 of row voltages ``v`` (N, K) with a crossbar ``g`` (K, M) (M2):

    .. math:: I = v\,G, \quad I_{on} = r \textstyle\sum_k v_k, \quad I_{off} = \sum_k v_k, \qquad
        s = \frac{2 I - I_{on} - I_{off}}{r - 1}

    With ideal devices and inputs (:math:`G \in \{1, r\}`, :math:`v \in \{0, 1\}`) every step is exact in
    float64 and :math:`s = u\,w^\top` as integers. The two reference columns are ideal (an assumption).
    """
    require_float_tensor(v, "v")
    require_float_tensor(g, "g")
    if v.dim() != 2 or g.dim() != 2 or v.shape[1] != g.shape[0]:
        raise ValueError(f"v and g must be (N, K) and (K, M), got {tuple(v.shape)} and {tuple(g.shape)}")
    on_off = _require_ratio(on_off)
    current = v.double() @ g.double()                        # column currents, Kirchhoff's law
    rows = v.double().sum(1, keepdim=True)
    i_on, i_off = on_off * rows, rows                        # the all-LRS and all-HRS reference columns
    return (2 * current - i_on - i_off) / (on_off - 1)


def cell_counts(rows: int, columns: int) -> dict:
    r"""Memristors for a ``rows`` x ``columns`` binary weight matrix: a differential pair per weight
    (:math:`2KM`, the usual signed mapping) vs one cell per weight plus two shared reference columns
    (:math:`K(M + 2)`, our reading of a select/reference column scheme)."""
    rows, columns = require_int(rows, "rows", minimum=1), require_int(columns, "columns", minimum=1)
    return {"differential_pair": 2 * rows * columns, "reference_columns": rows * (columns + 2)}


def memristor_forward(model: nn.Sequential, x: torch.Tensor, on_off: float = 10.0, stuck_on: float = 0.0,
                      stuck_off: float = 0.0, sigma: float = 0.0, swing: float = 0.0, salt: float = 0.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Logits of a BNN ``nn.Sequential`` whose binary ``QuantLinear`` layers (inputs :math:`\pm 1`) run on one
    memristor chip drawn with the given errors (M1)-(M4); the other layers run as usual (eval mode):

    .. math:: z_i = 2 s_i - \textstyle\sum_k w_{ik} + b_i, \qquad u = (x + 1)/2

    With no errors the logits equal ``model(x)`` (up to float32 rounding of the linear layers).
    """
    require_module(model)
    require_float_tensor(x, "x")
    _require_generator(generator)
    on_off = _require_ratio(on_off)
    errors = {"stuck_on": stuck_on, "stuck_off": stuck_off, "sigma": sigma}
    model.eval()
    with torch.no_grad():
        for layer in model:
            if not isinstance(layer, qnn.QuantLinear):
                x = layer(x)
                continue
            x, w = layer.quantized_input(x), _require_signs(layer.quantized_weight(), "binary layer weights")
            g = device_errors(program_crossbar(w, on_off), on_off, **errors, generator=generator)
            v = input_voltages((_require_signs(x, "binary layer inputs") + 1) / 2, swing, salt, generator)
            z = 2 * crossbar_dot(v, g, on_off) - w.double().sum(1)
            x = (z + (0 if layer.bias is None else layer.bias.double())).to(x.dtype)
    return x


def accuracy_under_errors(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, draws: int = 5, seed: int = 0,
                          **errors) -> torch.Tensor:
    r"""Test accuracy (``draws``,) float64 of ``model`` on ``draws`` memristor chips, each drawn with ``errors``
    (keywords of :func:`memristor_forward`) from one ``torch.Generator`` seeded with ``seed``."""
    require_tensor(y, "y")
    draws = require_int(draws, "draws", minimum=1)
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    return torch.tensor([float((memristor_forward(model, x, generator=generator, **errors).argmax(1) == y)
                               .double().mean()) for _ in range(draws)], dtype=torch.float64)
