"""Protocols to compare the book's quantization methods: the results pages (one per family and protocol).

Every method is trained and evaluated the same way, so that differences come from the quantizers alone. A
:class:`Protocol` fixes the data and the training budget; the architecture and the seeds are common to all:

- **data**: :data:`DIGITS`, scikit-learn's digits (64 features, stratified 75/25 split, seed 0), on which every
  method lands close to full precision; :data:`MNIST1D`, the locally generated MNIST-1D (40 features, 80/20 split,
  seed 0), built so that small models separate (an MLP stays far below a CNN, and quantization costs more);
- **architecture**: an MLP in → 128 → 128 → 128 → 10. The first and last layers stay in full precision (as in
  XNOR-Net, DoReFa-Net and most papers of the book); the two middle layers are quantized by the method, each
  followed by batch norm and the method's activation. The binary CNN protocol (:data:`MNIST1D_CNN`, for the ideas
  that need convolutions) reads each signal as a 1 × 40 image: a full-precision stem convolution, two blocks of the
  method (its binary convolution and whatever its paper puts around it), a full-precision classifier
  (:func:`protocol_cnn`);
- **training**: Adam, the protocol's learning rate, batch size and epochs, the method's latent-weight clipping if
  it has one;
- **seeds**: each configuration is trained with several seeds (initialisation and batch order); the page reports
  the mean and standard deviation of the final test accuracy.

A method is a set of quantizers from its paper's module (:mod:`qteach.papers`) for given weight/activation bit
widths (W/A, 32 meaning full precision). Post-training methods (quantize a trained full-precision model, no
retraining) reuse the full-precision runs of the same seeds.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from qteach import data as qdata
from qteach import nn as qnn
from qteach import train
from qteach.seed import set_seed

HIDDEN = 128
FULL = 32
#: The binary CNN protocol: channels of every convolution, and the kernel (1 × 5 over the 40 samples of a signal).
CNN_CHANNELS = 16
CNN_KERNEL = (1, 5)
ARCHITECTURES = ("mlp", "cnn")


@dataclass(frozen=True)
class Protocol:
    """The data and training budget of one comparison: ``load()`` returns the split (flat features), and
    ``architecture`` (one of :data:`ARCHITECTURES`) says which model the methods build: :func:`protocol_mlp` or
    :func:`protocol_cnn`."""

    name: str
    slug: str
    data_description: str
    load: Callable
    epochs: int
    lr: float
    batch_size: int
    architecture: str = "mlp"

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")


def _digits() -> qdata.Split:
    return qdata.digits(flatten=True, seed=0)


def _mnist1d() -> qdata.Split:
    signals = qdata.mnist1d(num_samples=5000, seed=0)
    return qdata.Split(signals.x_train.flatten(1), signals.y_train, signals.x_test.flatten(1), signals.y_test)


DIGITS = Protocol("digits", "digits", "scikit-learn's digits flattened to 64 features, stratified 75/25 split (seed 0)",
                  _digits, epochs=10, lr=3e-3, batch_size=128)
MNIST1D = Protocol("MNIST-1D", "mnist1d", "MNIST-1D (generated locally: 5,000 signals of 40 samples), 80/20 split (seed 0)",
                   _mnist1d, epochs=10, lr=3e-3, batch_size=256)
MNIST1D_CNN = dataclasses.replace(MNIST1D, name="MNIST-1D, binary CNN", slug="mnist1d_cnn", architecture="cnn")


#: What a binary network's paper changes over BNN (the 2019 papers mostly change one of these).
CHANGES = ("gradient", "scaling", "architecture", "optimizer")


@dataclass(frozen=True)
class Method:
    """A row group of the results table.

    ``layer(w_bits, a_bits)`` returns ``(weight_quantizer, input_quantizer, activation)`` for a quantized layer;
    ``prepare(model)``, if given, runs on the freshly built model before training (a paper's initialisation).
    ``fit(model, data, seed, protocol)``, if given, trains the model instead of the protocol's Adam loop, for a
    method whose optimizer is part of the paper (LAB, BCGD); it keeps the protocol's epochs and batch size.
    ``post_training(model, w_bits, data, seed, protocol)``, if given, replaces training: it receives a trained
    full-precision protocol model (a copy) and returns the quantized model to evaluate, re-training it on
    ``data`` only if the paper does (INQ, ADMM), or using it as the teacher of a new student (Apprentice).
    ``changes`` says which of :data:`CHANGES` a binary network's paper changes over BNN (empty for the others):
    the binary networks are split over two pages by it.
    ``conv_block(w_bits, a_bits, in_channels, out_channels, kernel_size)``, if given, returns one block of the
    binary CNN protocol (:func:`protocol_cnn`): a module from real-valued feature maps to real-valued feature maps
    of the same length, holding the method's quantized convolution and what its paper puts around it (the sign,
    batch norm, a shortcut, a gate). A method with a ``conv_block`` is on the CNN page; one with a ``conv_block``
    and no ``layer`` (its idea needs convolutions) is on the CNN page only (:attr:`architectures`).
    """

    name: str
    paper: str  # catalog slug
    configs: tuple  # (w_bits, a_bits) pairs
    layer: Callable | None = None
    weight_clip: float | None = None
    prepare: Callable | None = None
    fit: Callable | None = None
    post_training: Callable | None = None
    note: str = ""
    changes: str = ""
    conv_block: Callable | None = None

    def __post_init__(self):
        if self.changes not in ("",) + CHANGES:
            raise ValueError(f"changes must be one of {CHANGES} or empty, got {self.changes!r}")

    @property
    def architectures(self) -> tuple:
        """The protocol architectures the method builds: ``"mlp"`` unless only its ``conv_block`` is given,
        ``"cnn"`` when it has a ``conv_block``."""
        mlp = self.layer is not None or self.conv_block is None
        return ("mlp",) * mlp + ("cnn",) * (self.conv_block is not None)


@dataclass(frozen=True)
class Family:
    """One results page per protocol of ``protocols``: the configurations for which ``contains(method, w_bits,
    a_bits)`` holds, of the methods that build the protocols' architecture. ``references`` names (by catalog slug)
    methods whose home is another page of the same architecture, trained again on this one so that its claims can
    compare with them (as the full-precision baseline is)."""

    slug: str
    title: str
    description: str
    contains: Callable
    protocols: tuple = (DIGITS, MNIST1D)
    references: tuple = ()

    @property
    def architecture(self) -> str:
        return self.protocols[0].architecture

    def holds(self, method: Method, w_bits: int, a_bits: int) -> bool:
        """Whether the page shows ``method`` at ``w_bits``/``a_bits``."""
        return self.architecture in method.architectures and bool(self.contains(method, w_bits, a_bits))


def _trained(method: Method) -> bool:
    return method.post_training is None


FAMILIES = (
    Family("binary_weights", "Binary weights", "1-bit weights, full-precision activations, trained from scratch",
           lambda m, w, a: _trained(m) and w == 1 and a == FULL),
    Family("multibit_weights", "Ternary and multi-bit weights",
           "2- to 8-bit weights, full-precision activations, trained from scratch",
           lambda m, w, a: _trained(m) and 1 < w < FULL and a == FULL),
    Family("from_trained", "Weights from a trained model",
           "weights quantized from the trained full-precision model, with or without re-training",
           lambda m, w, a: not _trained(m)),
    Family("binary_activations", "Binary networks: the sign and its gradient",
           "1-bit weights and activations: BNN and the binary networks that change how the sign is trained",
           lambda m, w, a: _trained(m) and a == 1 and m.changes not in ("scaling", "architecture")),
    Family("binary_scaling", "Binary networks: scaling factors and architecture",
           "1-bit weights and activations: XNOR-Net and the binary networks that change the scaling factors "
           "(learned, or none at all) or the layer around the sign",
           lambda m, w, a: _trained(m) and a == 1 and m.changes in ("scaling", "architecture")),
    Family("two_bit_activations", "Binary weights, 2-bit activations",
           "2-bit activations with 1-bit weights: where the two activation levels are placed",
           lambda m, w, a: _trained(m) and w == 1 and a == 2),
    Family("two_bit_networks", "2-bit weights and activations",
           "2-bit weights and activations: fixed, learned and soft quantizers",
           lambda m, w, a: _trained(m) and w > 1 and a == 2),
    Family("four_bit_activations", "4-bit activations", "4-bit weights and activations: where the clipping range "
           "decides", lambda m, w, a: _trained(m) and a == 4),
    Family("multibit_activations", "3-bit activations: multiple binary bases",
           "3-bit weights and activations: three binary bases, fitted by least squares or by segmentation",
           lambda m, w, a: _trained(m) and a == 3),
    Family("eight_bit_training", "8-bit training",
           "8-bit weights and activations: quantization-aware training (forward only), int8 errors in backward "
           "too, and every tensor of training in 8 bits", lambda m, w, a: _trained(m) and a == 8),
    Family("binary_cnn", "Binary CNNs: the sign and its scales",
           "1-bit weights and activations in convolutions: BNN, and XNOR-Net, whose input scale becomes a map",
           lambda m, w, a: w == 1 and a == 1 and m.changes in ("", "scaling"), protocols=(MNIST1D_CNN,)),
    Family("binary_cnn_teacher", "Binary CNNs: a gated block taught by the float network",
           "1-bit weights and activations in convolutions: Real-to-Binary's block (a real-valued shortcut, a gate "
           "from the real-valued input) trained to match the float CNN's attention maps, with XNOR-Net as the "
           "reference", lambda m, w, a: w == 1 and a == 1 and m.changes == "optimizer", protocols=(MNIST1D_CNN,),
           references=("xnor_net",)),
    Family("binary_cnn_blocks", "Binary CNNs: dense and depth-wise blocks",
           "1-bit weights and activations in convolutions: MeliusNet's dense and improvement blocks, MoBiNet's "
           "depth-wise separable blocks with shortcuts", lambda m, w, a: w == 1 and a == 1
           and m.changes in ("architecture", "gradient"), protocols=(MNIST1D_CNN,)),
)


def page_path(protocol: Protocol, family: Family) -> str:
    """The results page of ``family`` under ``protocol``, relative to the repository."""
    return f"book/results/{protocol.slug}_{family.slug}.ipynb"


def page_specs() -> list[tuple[Family, Protocol]]:
    """The results pages as ``(family, protocol)``, family by family, the digits page before the MNIST-1D one."""
    return [(family_, protocol) for family_ in FAMILIES for protocol in family_.protocols]


def pages() -> list[str]:
    """Every results page's path, in the order of :func:`page_specs`."""
    return [page_path(protocol, family_) for family_, protocol in page_specs()]


def family(slug: str) -> Family:
    found = [f for f in FAMILIES if f.slug == slug]
    if not found:
        raise ValueError(f"family must be one of {[f.slug for f in FAMILIES]}, got {slug!r}")
    return found[0]


def protocol_mlp(method: Method, w_bits: int, a_bits: int, in_features: int = 64) -> nn.Sequential:
    """The protocol's MLP with the method's quantizers in the two middle layers."""
    if method.layer is None:
        raise ValueError(f"{method.name} is a post-training method: it has no layers of its own")
    layers: list[nn.Module] = [nn.Linear(in_features, HIDDEN), nn.BatchNorm1d(HIDDEN)]  # first: full precision
    _, _, activation = method.layer(w_bits, a_bits)
    layers.append(activation)
    for _ in range(2):  # the two middle layers: the method's quantizers
        weight_quantizer, input_quantizer, activation = method.layer(w_bits, a_bits)
        layers += [qnn.QuantLinear(HIDDEN, HIDDEN, weight_quantizer=weight_quantizer,
                                   input_quantizer=input_quantizer),
                   nn.BatchNorm1d(HIDDEN), activation]
    layers.append(nn.Linear(HIDDEN, 10))  # last layer: full precision
    return nn.Sequential(*layers)


def conv_block_from_layer(layer: Callable) -> Callable:
    """A ``conv_block`` for a method whose ``layer`` quantizers act on any weight shape: the method's activation,
    its quantized convolution (:class:`qteach.nn.QuantConv2d`, no bias), then batch norm, as the MLP's layers."""
    def conv_block(w_bits, a_bits, in_channels, out_channels, kernel_size):
        weight_quantizer, input_quantizer, activation = layer(w_bits, a_bits)
        return nn.Sequential(activation, qnn.QuantConv2d(
            in_channels, out_channels, kernel_size, padding=qnn.same_padding(kernel_size), bias=False,
            weight_quantizer=weight_quantizer, input_quantizer=input_quantizer), nn.BatchNorm2d(out_channels))
    return conv_block


def protocol_cnn(method: Method, w_bits: int, a_bits: int, length: int = 40) -> nn.Sequential:
    """The binary CNN protocol's model for signals of ``length`` samples, read as 1 × ``length`` images:

    a full-precision stem (convolution 1 → :data:`CNN_CHANNELS`, batch norm), max pooling by 2, the method's first
    block, max pooling by 2, its second block, and a full-precision linear classifier on the flattened maps. The
    blocks (``method.conv_block``) keep :data:`CNN_CHANNELS` channels and :data:`CNN_KERNEL`; the classifier
    reads their real-valued output, as in XNOR-Net, Bi-Real Net and the papers of the CNN page."""
    if method.conv_block is None:
        raise ValueError(f"{method.name} has no conv_block: it is on the MLP pages only")
    if length % 4:
        raise ValueError(f"length must be a multiple of 4 (two poolings by 2), got {length}")
    channels, kernel = CNN_CHANNELS, CNN_KERNEL
    return nn.Sequential(
        nn.Unflatten(1, (1, 1, length)),
        nn.Conv2d(1, channels, kernel, padding=qnn.same_padding(kernel), bias=False), nn.BatchNorm2d(channels),
        nn.MaxPool2d((1, 2)),
        method.conv_block(w_bits, a_bits, channels, channels, kernel),
        nn.MaxPool2d((1, 2)),
        method.conv_block(w_bits, a_bits, channels, channels, kernel),
        nn.Flatten(), nn.Linear(channels * (length // 4), 10))


def protocol_model(method: Method, w_bits: int, a_bits: int, protocol: Protocol, in_features: int) -> nn.Module:
    """The model ``method`` trains under ``protocol``: :func:`protocol_mlp` or :func:`protocol_cnn`."""
    if protocol.architecture == "cnn":
        return protocol_cnn(method, w_bits, a_bits, in_features)
    return protocol_mlp(method, w_bits, a_bits, in_features)


def describe_protocol(seeds=(0, 1, 2), protocol: Protocol = DIGITS):
    """The protocol in a few markdown bullets, with the values this module actually uses."""
    from qteach.display import Markdown

    data = split(protocol)
    features = data.x_train.shape[1]
    if protocol.architecture == "cnn":
        architecture = (
            f"- **architecture**: each signal as a 1 × {features} image; a full-precision stem convolution "
            f"(1 → {CNN_CHANNELS} channels, kernel {CNN_KERNEL[0]} × {CNN_KERNEL[1]}) with batch norm, max pooling "
            f"by 2, the method's block ({CNN_CHANNELS} → {CNN_CHANNELS} channels, same kernel: its binary "
            f"convolution and what its paper puts around it), max pooling by 2, a second block, a full-precision "
            f"linear classifier on the {CNN_CHANNELS} × {features // 4} maps;")
    else:
        architecture = (
            f"- **architecture**: MLP {features} → {HIDDEN} → {HIDDEN} → {HIDDEN} → 10; first and last "
            "layers in full precision, the two middle layers quantized by the method, each followed by batch norm "
            "and the method's activation;")
    return Markdown("\n".join([
        f"- **data**: {protocol.data_description}: {len(data.x_train)} training and {len(data.x_test)} test "
        "examples;",
        architecture,
        f"- **training**: Adam, learning rate {protocol.lr}, batch {protocol.batch_size}, {protocol.epochs} "
        "epochs, cross-entropy, the method's latent-weight clipping if it has one;",
        f"- **seeds**: {', '.join(map(str, seeds))} (initialisation and batch order); mean and standard deviation "
        "of the final test accuracy.",
    ]))


def split(protocol: Protocol = DIGITS) -> qdata.Split:
    return protocol.load()


def _protocol_fit(model: nn.Module, data: qdata.Split, seed: int, protocol: Protocol, weight_clip=None,
                  after_step=None, loss_fn=None, optimizer="adam") -> None:
    """Train ``model`` with the protocol's epochs, batch size and learning rate (Adam unless a paper's method
    brings its own ``optimizer``, ``loss_fn`` or ``after_step``)."""
    train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size, seed=seed,
              progress=False, weight_clip=weight_clip, after_step=after_step, loss_fn=loss_fn, optimizer=optimizer)


@dataclass
class Result:
    method: str
    paper: str
    w_bits: int
    a_bits: int
    accuracies: list = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


def run(methods: list[Method], seeds=(0, 1, 2), baseline: Method | None = None,
        protocol: Protocol = DIGITS) -> list[Result]:
    """Train every configuration of every method with every seed under ``protocol``."""
    data = split(protocol)
    in_features = data.x_train.shape[1]
    results = []
    trained_full: dict[int, nn.Module] = {}

    def full_precision(seed: int) -> nn.Module:
        if seed not in trained_full:
            set_seed(seed)
            model = protocol_model(baseline, FULL, FULL, protocol, in_features)
            _protocol_fit(model, data, seed, protocol)
            trained_full[seed] = model
        return trained_full[seed]

    for method in methods:
        for w_bits, a_bits in method.configs:
            result = Result(method.name, method.paper, w_bits, a_bits)
            for seed in seeds:
                if method.post_training is not None:
                    if baseline is None:
                        raise ValueError("post-training methods need the full-precision baseline method")
                    set_seed(seed)
                    model = method.post_training(copy.deepcopy(full_precision(seed)), w_bits, data, seed, protocol)
                    result.accuracies.append(train.evaluate(model, data.x_test, data.y_test))
                else:
                    set_seed(seed)
                    model = protocol_model(method, w_bits, a_bits, protocol, in_features)
                    if method.prepare is not None:
                        method.prepare(model)
                    if method.fit is not None:
                        method.fit(model, data, seed, protocol)
                    else:
                        _protocol_fit(model, data, seed, protocol, weight_clip=method.weight_clip)
                    result.accuracies.append(train.evaluate(model, data.x_test, data.y_test))
                    if method is baseline:
                        trained_full.setdefault(seed, model)
            results.append(result)
    return results


#: One colour and one marker per method of the figure, in the order of the methods (the baseline is a line):
#: every method keeps its own colour and marker, so that none is confused with another.
METHOD_STYLES = (
    ("#1f77b4", "circle"), ("#ff7f0e", "square"), ("#2ca02c", "diamond"), ("#d62728", "triangle-up"),
    ("#9467bd", "triangle-down"), ("#8c564b", "cross"), ("#e377c2", "x"), ("#17becf", "star"),
    ("#bcbd22", "pentagon"), ("#1a1a6e", "hexagon"), ("#000000", "triangle-left"), ("#e6ab02", "triangle-right"),
    ("#c51b7d", "star-diamond"),
)


def accuracy_figure(results: list[Result], baseline: Result | None = None,
                    title: str = "Test accuracy under one protocol"):
    """The results page's figure: test accuracy (mean ± standard deviation over the seeds) of every method at
    each of its W/A configurations, one colour and marker per method (:data:`METHOD_STYLES`), the points of one
    configuration side by side; ``baseline`` (one of ``results``) is drawn as a dashed line. Configurations are
    ordered by activation bits, then weight bits. More methods than styles raise ``ValueError``."""
    from plotly import graph_objects as go

    from qteach import viz

    shown = [r for r in results if r is not baseline]
    names = list(dict.fromkeys(r.method for r in shown))
    if not names:
        raise ValueError("results must hold at least one result besides the baseline")
    if len(names) > len(METHOD_STYLES):
        raise ValueError(f"at most {len(METHOD_STYLES)} methods have a style of their own, got {len(names)}")
    configs = sorted({(r.a_bits, r.w_bits) for r in shown})
    label = {config: f"W{config[1]}/A{config[0]}" for config in configs}
    fig = viz.figure(title, "bit widths (weights / activations), activation bits growing to the right",
                     "test accuracy (%)", height=640, scattermode="group", scattergap=0.15)
    for name, (colour, symbol) in zip(names, METHOD_STYLES):
        points = sorted((r for r in shown if r.method == name), key=lambda r: configs.index((r.a_bits, r.w_bits)))
        fig.add_trace(go.Scatter(
            x=[label[r.a_bits, r.w_bits] for r in points], y=[round(100 * r.mean, 2) for r in points],
            error_y=dict(array=[round(100 * r.std, 2) for r in points], thickness=1),
            mode="lines+markers", name=name, line=dict(color=colour, width=1),
            marker=dict(color=colour, symbol=symbol, size=10)))
    if baseline is not None:
        fig.add_hline(y=100 * baseline.mean, line=dict(dash="dash", color="grey"),
                      annotation_text=baseline.method, annotation_position="top left")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=[label[c] for c in configs])
    low = min(100 * (r.mean - r.std) for r in results)  # grouped points would otherwise pull the axis to 0
    high = max(100 * (r.mean + r.std) for r in results)
    fig.update_yaxes(range=[low - 0.05 * (high - low) - 0.1, high + 0.05 * (high - low) + 0.1])
    return fig


def _relu_layer(weight_quantizer_for):
    """A method that quantizes weights only: full-precision inputs and ReLU."""
    return lambda w_bits, a_bits: (weight_quantizer_for(w_bits), None, nn.ReLU())


def with_weight_quantizer(model: nn.Module, make_quantizer: Callable) -> nn.Module:
    """``model`` (a trained protocol model) with ``make_quantizer()`` as the weight quantizer of its quantized
    layers: post-training quantization, no retraining. Changes and returns ``model``."""
    for module in model.modules():
        if isinstance(module, qnn.QuantLinear):
            module.weight_quantizer = make_quantizer()
    return model


def in_family(methods_: list[Method], family_: Family) -> list[Method]:
    """``methods_`` restricted to the configurations of ``family_`` (methods left with none are dropped); the
    first method, the full-precision baseline, and the family's ``references`` are always kept."""
    if not isinstance(family_, Family):
        raise TypeError(f"family_ must be a comparison.Family, got {type(family_).__name__}")
    kept = [methods_[0]]
    for method in methods_[1:]:
        if method.paper in family_.references and family_.architecture in method.architectures:
            kept.append(method)
            continue
        configs = tuple(c for c in method.configs if family_.holds(method, *c))
        if configs:
            kept.append(dataclasses.replace(method, configs=configs))
    return kept


def methods_table(methods_: list[Method]):
    """The methods of a page as a table: name, W/A configurations, chapter, note."""
    from qteach import display

    return display.table(["method", "W/A", "chapter", "note"],
                         [[m.name, ", ".join(f"W{w}/A{a}" for w, a in m.configs), m.paper or "(the baseline)",
                           m.note or "-"] for m in methods_], align=["<", "<", "<", "<"])


def results_table(results: list[Result]):
    """Mean ± standard deviation of the test accuracy (%) of every configuration, as a table."""
    from qteach import display

    return display.table(["method", "W/A", "accuracy (%)"],
                         [[r.method, f"W{r.w_bits}/A{r.a_bits}", f"{100 * r.mean:.1f} ± {100 * r.std:.1f}"]
                          for r in results], align=["<", "<", ">"])


def _middle_layers(model: nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, qnn.QuantLinear)]


def methods() -> list[Method]:
    """The methods of the results pages, in the book's order; the first is the full-precision baseline."""
    from qteach.papers import (abc_net, admm_low_bit, apprentice, binaryconnect, binaryduo, bnn_plus,
                               competitive_bnn_from_scratch, differentiable_soft_quantization,
                               distillation_guided_residual, dorefa_net, fine_grained_ternary,
                               fully_quantized_detection, good_distribution, hwgq, improved_bnn_training,
                               incremental_network_quantization, information_capacity, ir_net,
                               loss_aware_binarization, meliusnet, metaquant, mobinet, pact,
                               piecewise_approximation, proxquant, pxnor, quant_noise, quantization_networks,
                               random_partition_relaxation, real_to_binary, rebnet, rotated_bnn,
                               self_binarizing_networks, semi_binary_decomposition, shiftcnn, syq,
                               ternary_weight_networks, trained_binarization, trained_ternary_quantization,
                               unified_int8_training, wageubn_int8_training, wrpn, xnor_net, xnor_net_plus_plus)
    from qteach.papers import blended_coarse_gradient_descent as bcgd

    inq, lab, sbd = incremental_network_quantization, loss_aware_binarization, semi_binary_decomposition

    def inq_post_training(model, w_bits, data, seed, protocol):
        with_weight_quantizer(model, lambda: inq.INQQuantizer(bits=w_bits))
        inq.incremental_quantization(model, data, epochs=2, seed=seed, batch_size=128)
        return model

    def dorefa_layer(w_bits, a_bits):
        weight = None if w_bits == FULL else dorefa_net.WeightQuantizer(w_bits)
        return weight, None, dorefa_net.ActivationQuantizer(a_bits)

    def lab_fit(model, data, seed, protocol):
        optimizer = {}

        def adam(params):
            optimizer["adam"] = torch.optim.Adam(params, lr=protocol.lr)
            return optimizer["adam"]

        _protocol_fit(model, data, seed, protocol, weight_clip=1.0, optimizer=adam,
                      after_step=lambda m: lab.update_curvature(m, optimizer["adam"]))

    def bcgd_fit(model, data, seed, protocol):
        weights = [layer.weight for layer in _middle_layers(model)]
        rest = [p for p in model.parameters() if all(p is not w for w in weights)]
        optimizer = bcgd.BCGD([{"params": weights}, {"params": rest, "quantized": False}], lr=0.1, rho=0.03)
        _protocol_fit(model, data, seed, protocol, optimizer=lambda params: optimizer)

    def pact_fit(model, data, seed, protocol):
        cross_entropy = nn.CrossEntropyLoss()
        _protocol_fit(model, data, seed, protocol,
                      loss_fn=lambda logits, y: cross_entropy(logits, y) + pact.alpha_l2(model, 1e-3))

    def admm_post_training(model, w_bits, data, seed, protocol):
        weights = [layer.weight for layer in _middle_layers(model)]
        admm_low_bit.admm_fit(model, data, weights, levels=admm_low_bit.TERNARY, rho=2.0, epochs=3, lr=0.05,
                              batch_size=protocol.batch_size, seed=seed)
        return model

    def semi_binary_post_training(model, w_bits, data, seed, protocol):
        for layer in _middle_layers(model):
            m, n = layer.weight.shape
            k = max(k for k in range(1, min(m, n) + 1)
                    if sbd.storage_bits(m, n, k) <= sbd.bwn_storage_bits(m, n))
            u, d, v, _ = sbd.fit(layer.weight.detach(), k, iterations=8)
            with torch.no_grad():
                layer.weight.copy_(sbd.reconstruct(u, d, v))
        return model

    def ternary_student(w, a):
        return _relu_layer(lambda bits: ternary_weight_networks.TernaryWeightQuantizer())(w, a)

    def apprentice_post_training(teacher, w_bits, data, seed, protocol):
        set_seed(seed)
        student = protocol_mlp(Method("", "", (), layer=ternary_student), w_bits, FULL, data.x_train.shape[1])
        apprentice.train_apprentice(student, data, teacher=teacher, scheme="B", epochs=protocol.epochs,
                                    lr=protocol.lr, batch_size=protocol.batch_size, seed=seed)
        return student

    def self_binarizing_fit(model, data, seed, protocol):
        self_binarizing_networks.fit_self_binarizing(model, data, epochs=protocol.epochs, lr=protocol.lr,
                                                     batch_size=protocol.batch_size, end=100.0, seed=seed)

    def bnn_plus_fit(model, data, seed, protocol):
        bnn_plus.protocol_fit(model, data, seed, protocol, lam=10.0, kind="l2")

    def trained_binarization_fit(model, data, seed, protocol):
        trained_binarization.protocol_fit(model, data, seed, protocol, lam=1e-3)

    def integer_only_layer(w_bits, a_bits):
        return (qnn.MinMaxFakeQuantizer(w_bits, signed=True, symmetric=True), None,
                nn.Sequential(nn.ReLU(), qnn.MinMaxFakeQuantizer(a_bits, momentum=0.1)))

    return [
        Method("Full precision", "", ((FULL, FULL),), layer=lambda w, a: (None, None, nn.ReLU()),
               conv_block=conv_block_from_layer(lambda w, a: (None, None, nn.ReLU()))),
        Method("BinaryConnect (deterministic)", "binaryconnect", ((1, FULL),),
               layer=_relu_layer(lambda w: binaryconnect.BinaryConnect(stochastic=False)), weight_clip=1.0),
        Method("BNN", "binarized_neural_networks", ((1, 1),),
               layer=lambda w, a: (qnn.SignQuantizer(), None, qnn.SignQuantizer()), weight_clip=1.0,
               note="sign weights and activations, Htanh straight-through estimator",
               conv_block=conv_block_from_layer(lambda w, a: (qnn.SignQuantizer(), None, qnn.SignQuantizer()))),
        Method("BWN (XNOR-Net paper)", "xnor_net", ((1, FULL),),
               layer=_relu_layer(lambda w: xnor_net.BinaryWeight()), weight_clip=1.0),
        Method("XNOR-Net", "xnor_net", ((1, 1),),
               layer=lambda w, a: (xnor_net.BinaryWeight(), xnor_net.ScaledSignInput(), nn.Identity()),
               weight_clip=1.0, note="batch norm, then the scaled sign of the input (beta), binary weights (alpha)",
               changes="scaling", conv_block=xnor_net.comparison_conv_block),
        Method("TWN", "ternary_weight_networks", ((2, FULL),), layer=ternary_student),
        Method("DoReFa-Net", "dorefa_net", ((1, 1), (1, FULL), (1, 2), (2, FULL), (2, 2), (4, 4)),
               layer=dorefa_layer),
        Method("Fine-grained ternary (N=4), no retraining", "fine_grained_ternary", ((2, FULL),),
               post_training=lambda model, w, data, seed, protocol: with_weight_quantizer(
                   model, lambda: fine_grained_ternary.FineGrainedTernaryQuantizer(group_size=4)),
               note="one scale per group of 4 input weights, applied to the trained full-precision model"),
        Method("ShiftCNN (N=2, B=4), no retraining", "shiftcnn", ((8, FULL),),
               post_training=lambda model, w, data, seed, protocol: with_weight_quantizer(
                   model, lambda: shiftcnn.ShiftQuantizer(n_terms=2, bits=4)),
               note="each weight a sum of two signed powers of two, applied to the trained model"),
        Method("HWGQ", "hwgq", ((1, 2),),
               layer=lambda w, a: (xnor_net.BinaryWeight(), None, hwgq.HWGQ(bits=a)), weight_clip=1.0,
               note="binary weights (BWN), 2-bit half-wave Gaussian quantizer as the activation"),
        Method("INQ (from the trained model)", "incremental_network_quantization", ((4, FULL),),
               post_training=inq_post_training,
               note="50/75/87.5/100 % of the weights to powers of two, 2 epochs of re-training per step"),
        Method("TTQ", "trained_ternary_quantization", ((2, FULL),),
               layer=_relu_layer(lambda w: trained_ternary_quantization.TTQQuantizer()),
               prepare=trained_ternary_quantization.normalize_latent_weights_,
               note="learned positive and negative scales; latent weights normalised to [-1, 1] first"),
        Method("WRPN (width x1)", "wrpn", ((2, 2), (4, 4)),
               layer=lambda w, a: (wrpn.WRPNWeightQuantizer(w), None, wrpn.WRPNActivationQuantizer(a)),
               prepare=wrpn.init_latent_weights_, note="the protocol's width; the chapter widens the layers"),
        Method("ABC-Net (M = N = 3)", "abc_net", ((3, 3),),
               layer=lambda w, a: (abc_net.ABCWeightQuantizer(w), abc_net.ABCActivationQuantizer(a), nn.Identity()),
               note="3 binary bases for the weights, 3 shifted binary activations"),
        Method("PA (M = N = 3)", "piecewise_approximation", ((3, 3),), layer=piecewise_approximation.comparison_layer,
               note="3 weight and 3 activation bases by piecewise segmentation (quantile points, piece means; our "
                    "reconstruction: the method section could not be read); activation points tracked by EMA"),
        Method("Integer-only (QAT, 8 bits)", "integer_arithmetic_only", ((8, 8),), layer=integer_only_layer,
               note="symmetric 8-bit weights, ReLU then 8-bit activations with EMA ranges (fake quantization)"),
        Method("Unified INT8 training (DSGC + DCLR)", "unified_int8_training", ((8, 8),),
               layer=unified_int8_training.comparison_layer, fit=unified_int8_training.protocol_fit,
               note="8-bit weights and inputs forward, and the errors quantized to int8 in backward too: clipping "
                    "searched by DSGC every 10 steps, Adam's step scaled down by the direction deviation (DCLR)"),
        Method("WAGEUBN (all paths 8-bit)", "wageubn_int8_training", ((8, 8),),
               layer=wageubn_int8_training.comparison_layer, fit=wageubn_int8_training.protocol_fit,
               note="weights, activations, gradients, errors, updates and batch norm all quantized as in the official "
                    "code (direct, shift and constant quantizers; 8-bit batch norm, 13-bit momentum, 24-bit stored "
                    "weights); its own momentum SGD (lr 0.5, momentum 1/4) instead of Adam"),
        Method("PACT", "pact", ((2, 2), (4, 4)),
               layer=lambda w, a: (dorefa_net.WeightQuantizer(w), None, pact.PACT(a, alpha=6.0)), fit=pact_fit,
               note="learned clipping level (alpha = 6 at first, L2 1e-3 on alpha), DoReFa weights"),
        Method("LAB", "loss_aware_binarization", ((1, FULL),),
               layer=_relu_layer(lambda w: lab.LABWeight("lab")), fit=lab_fit,
               note="alpha weighted by Adam's second moment (the diagonal Hessian estimate)"),
        Method("BCGD (rho = 0.03)", "blended_coarse_gradient_descent", ((1, FULL),),
               layer=_relu_layer(lambda w: bcgd.ScaledSignSTE()), fit=bcgd_fit,
               note="the paper's blended update, plain gradient steps (lr 0.1), not Adam"),
        Method("ReBNet (M = 2)", "rebnet", ((1, 2),),
               layer=lambda w, a: (qnn.SignQuantizer(), None, rebnet.ResidualSign(a)), weight_clip=1.0,
               note="sign weights, 2 residual binary levels with learned gammas as the activation"),
        Method("BMXNet-v2 (from scratch)", "competitive_bnn_from_scratch", ((1, 1),),
               layer=competitive_bnn_from_scratch.comparison_layer,
               note="unscaled sign weights (identity gradient), sign inputs with the gradient cancelled for |x| > 1",
               changes="scaling"),
        Method("XNOR-Net++ (learned scale per output)", "xnor_net_plus_plus", ((1, 1),),
               layer=lambda w, a: xnor_net_plus_plus.comparison_layer(w, a, features=HIDDEN), weight_clip=1.0,
               note="sign weights and inputs, one learned factor per output (starts at 1) instead of XNOR-Net's "
                    "analytic alpha and beta", changes="scaling"),
        Method("Self-binarizing (tanh slope 1 to 100)", "self_binarizing_networks", ((1, 1),),
               layer=self_binarizing_networks.comparison_layer, fit=self_binarizing_fit, changes="gradient",
               note="tanh(vW) weights and tanh(vx) inputs sharpened from v = 1 to 100 while training, then the "
                    "exact sign"),
        Method("BNN+ (SignSwish, beta = 5)", "bnn_plus", ((1, 1),), layer=bnn_plus.comparison_layer,
               fit=bnn_plus_fit, changes="gradient",
               note="the SignSwish derivative in place of Htanh's, learned weight scales, L2 regularizer "
                    "(lambda = 10) pulling |W| to them"),
        Method("IR-Net (Libra-PB + EDE)", "ir_net", ((1, 1),), layer=ir_net.comparison_layer, fit=ir_net.protocol_fit,
               changes="gradient",
               note="weights balanced and standardized per output before the sign, scaled by a power of two "
                    "(Libra-PB); sign weights and activations trained through EDE's k t (1 - tanh^2(t x)), t from "
                    "1e-3 to 10 on a log scale over the epochs, k = max(1/t, 1); no weight clipping (as the code)"),
        Method("PXNOR (noise level 0.5)", "pxnor", ((1, 1),), layer=pxnor.comparison_layer, weight_clip=1.0,
               changes="architecture",
               note="XNOR-Net's alpha sign(W); each input perturbed by a fixed noise mask before its sign"),
        Method("Trained binarization (our reconstruction)", "trained_binarization", ((1, 1),),
               layer=lambda w, a: trained_binarization.comparison_layer(w, a, features=HIDDEN),
               fit=trained_binarization_fit, changes="gradient",
               note="learned alpha per output (starts at mean |W|) and beta per layer, Bi-Real's 2 - 2|x| sign "
                    "gradient, L2 on alpha (1e-3); the method section could not be read"),
        Method("RBNN (bi-rotation, official phi_0 = pi/2)", "rotated_bnn", ((1, 1),),
               layer=lambda w, a: rotated_bnn.comparison_layer(w, a, in_features=HIDDEN, out_features=HIDDEN),
               fit=rotated_bnn.protocol_fit, changes="scaling",
               note="standardized rows rotated by R1 (x) R2 (3 alternating SVD steps per epoch), mixed with the "
                    "original by a learned |sin phi|, alpha sign(.); standardized sign inputs; training-aware sign "
                    "gradient (t from 0.01 to 10); no clipping"),
        Method("Improved BNN training (PReLU)", "improved_bnn_training", ((1, 1),),
               layer=lambda w, a: improved_bnn_training.comparison_layer(w, a, features=HIDDEN), weight_clip=1.0,
               changes="architecture",
               note="XNOR-Net's alpha sign(W), sign inputs, a PReLU after the layer; the paper's reverse-order and "
                    "progressive training are compared in its chapter"),
        Method("Entropy penalty (lambda = 10, H* = 1 bit)", "information_capacity", ((1, 1),),
               layer=information_capacity.comparison_layer,
               fit=lambda model, data, seed, protocol: information_capacity.protocol_fit(
                   model, data, seed, protocol, lam=10.0, target=1.0),
               weight_clip=1.0, changes="optimizer",
               note="BNN's sign weights and activations; the loss adds lambda times the mean over binary rows of "
                    "(H_f - 1)^2, H_f the entropy of the row's sign bits (our reconstruction: the method section "
                    "could not be read)"),
        Method("Distillation-guided residual (block-wise KD + SI branch)", "distillation_guided_residual", ((1, 1),),
               post_training=distillation_guided_residual.protocol_post_training,
               note="a BNN student with a small real-valued branch (k = 6, 9.4 % more weights) beside each binary "
                    "layer, trained with cross-entropy + 0.1 x the block-wise MSE to the trained full-precision "
                    "model of the same seed (0.1 was chosen after a look at test accuracy: lambda = 1 cost points)"),
        Method("BinaryDuo (ternary, then decoupled)", "binaryduo", ((1, 1),), layer=binaryduo.comparison_layer,
               fit=binaryduo.protocol_fit, weight_clip=1.0, changes="architecture",
               note="sign(W) x mean|W| per layer, 0/1 activations (clipped ReLU, STE); a ternary MLP of width 90 = "
                    "floor(128 / sqrt 2) trained 7 of the 10 epochs, then decoupled (each ternary unit into two "
                    "binary ones) and fine-tuned 3 epochs (our split): 2 x 90 x 90 = 16,200 binary weights per "
                    "middle layer against 16,384, float first layer 64 x 90, last 180 x 10"),
        Method("Real-to-Binary (gated block, shortcut, attention matching)", "real_to_binary", ((1, 1),),
               conv_block=real_to_binary.comparison_conv_block, post_training=real_to_binary.protocol_post_training,
               changes="optimizer",
               note="each block: batch norm, sign, binary convolution scaled by a gate sigma(W2 ReLU(W1 avgpool)) "
                    "(r = 8) of the block's real-valued input, PReLU, a real-valued shortcut; one stage of "
                    "cross-entropy + 30 x the attention-matching loss (maps normalised by their max, as larq zoo) "
                    "to the trained float CNN of the same seed; the paper's progressive stages are in its chapter"),
        Method("MeliusNet (dense + improvement block)", "meliusnet", ((1, 1),),
               conv_block=meliusnet.comparison_conv_block, changes="architecture",
               note="BinaryDenseNet's transition (batch norm, ReLU, full-precision 1x1 convolution 16 -> 8), a dense "
                    "block (batch norm, sign, binary 1x5 convolution 8 -> 8, concatenated) and an improvement block "
                    "(binary convolution 16 -> 8 added to the last 8 channels): 960 binary weights per block against "
                    "BNN's 1,280, plus 128 full-precision ones and a real-valued concatenated path"),
        Method("MoBiNet (our reconstruction)", "mobinet", ((1, 1),), conv_block=mobinet.comparison_conv_block,
               weight_clip=1.0, changes="architecture",
               note="binary depth-wise 1x5 and point-wise 1x1 convolutions, batch norm after each, a real identity "
                    "shortcut around each (the paper's skip placement could not be read): 6,720 bit operations per "
                    "block on 20 positions against BNN's 25,600"),
        Method("ProxQuant (binary, lambda_t = 3 t)", "proxquant", ((1, FULL),),
               layer=proxquant.comparison_layer, fit=proxquant.protocol_fit,
               note="real weights in training; after each Adam step the prox of the W-shaped regularizer (strength "
                    "lr * 3 * epoch) and a clip to [-1, 1]; signs frozen at 2/3 of the epochs; sign(W) at evaluation"),
        Method("MetaQuant (MultiFC, DoReFa weights)", "metaquant", ((1, FULL),),
               layer=metaquant.comparison_layer, fit=metaquant.protocol_fit,
               note="1-bit DoReFa weights; a shared MultiFC meta network (2 linear layers, hidden 100, starting as "
                    "the identity map c = 1) gives the weight gradient in place of the STE, trained through the "
                    "updated weights"),
        Method("DSQ", "differentiable_soft_quantization", ((2, 2), (4, 4)),
               layer=differentiable_soft_quantization.comparison_layer,
               note="piecewise-tanh soft quantizer in training (alpha learned from 0.2, clamped to [0.01, 0.5]), "
                    "learned ranges [l, u] (weights from min/max, activations from [0, 2]); the staircase in "
                    "evaluation; its chapter trains it at 2 bits"),
        Method("GDRQ (Scale-Clip, 4 groups)", "good_distribution", ((2, 2),), layer=good_distribution.comparison_layer,
               note="our reconstruction from the abstracts: weights clipped at 2 x their mean absolute value, one such "
                    "scale per group of rows (4 groups), activations clipped at 3 x a running mean of the batch mean; "
                    "uniform levels, straight-through inside the clip"),
        Method("FQN (channel-wise, percentile, frozen BN)", "fully_quantized_detection", ((4, 4),),
               layer=fully_quantized_detection.comparison_layer, fit=fully_quantized_detection.protocol_fit,
               note="channel-wise 4-bit weights; ReLU then 4-bit activations clipped to the [0.1 %, 99.9 %] "
                    "percentiles of 20 calibration batches after half of the epochs, batch norm frozen for the rest"),
        Method("Quantization networks (T_0 = 10)", "quantization_networks", ((2, FULL), (2, 2)),
               layer=quantization_networks.comparison_layer, fit=quantization_networks.protocol_fit,
               note="ternary weights (and at 2/2 activations on {0, 1, 2, 3} after the ReLU) as sums of sigmoids "
                    "whose temperature grows as (epoch + 1) x 10, exact steps in evaluation; alpha, beta learned, "
                    "biases from 1-D k-means (the official code's levels)"),
        Method("SYQ (ternary, per row)", "syq", ((2, FULL),),
               layer=_relu_layer(lambda w: syq.SYQQuantizer((HIDDEN, HIDDEN), "row", ternary=True)),
               note="symmetric ternary weights, one learned scale per output row"),
        Method("Quant-Noise (int4, p = 0.5)", "quant_noise", ((4, FULL),), layer=quant_noise.comparison_layer,
               note="4-bit per-tensor min/max weights; in training each weight is fake-quantized with probability "
                    "0.5 (straight-through), the others stay float; fully quantized at evaluation"),
        Method("RPR (from the trained model)", "random_partition_relaxation", ((1, FULL), (2, FULL)),
               post_training=random_partition_relaxation.protocol_post_training,
               note="uniform binary/ternary levels with an L2-optimal scale; 40/30/20/10/0 % of the weights relaxed "
                    "at random (a new partition every step), 2 epochs of re-training per stage"),
        Method("ADMM (ternary, from the trained model)", "admm_low_bit", ((2, FULL),),
               post_training=admm_post_training,
               note="3 epochs of ADMM (rho = 2, extragradient steps of 0.05) from the trained model"),
        Method("Semi-binary decomposition, no retraining", "semi_binary_decomposition", ((1, FULL),),
               post_training=semi_binary_post_training,
               note="W = U diag(d) V^T with binary U, V at BWN's storage, applied to the trained model"),
        Method("Apprentice (scheme B)", "apprentice", ((2, FULL),), post_training=apprentice_post_training,
               note="ternary (TWN) student taught by the trained full-precision model of the same seed"),
    ]
