r"""Binary Neural Networks: A Survey -- the survey's taxonomy as data, and every binarization chapter of the book
placed in it.

Qin, Gong, Liu, Bai, Song and Sebe (Pattern Recognition 105:107281, 2020; arXiv 2004.03333) sort binarization
methods into the *naive* solutions, which binarize directly, and the *optimized* ones, which minimize the
quantization error, improve the network loss function, or reduce the gradient error; they also discuss
hardware-friendly design and training tricks (abstract and highlights). Only the abstract and the highlights could
be read for this book: the section numbers, the survey's own assignment of each method and its comparison tables
could not. The category names and definitions below follow the abstract; which category each chapter falls in is
**our placement**, made from the chapter's mechanism (the ``reason`` of each entry), not the survey's. Two
categories are the book's own, for chapters the five categories do not describe: network structure (the network
around the binary layer) and analyses and other binary models.

A method that changes several things (IR-Net: balanced weights and a new gradient) is placed by the change its
results-page entry names (``qteach.comparison.Method.changes``) or, for the others, by the change its chapter
measures first; its reason names the others.
"""

from __future__ import annotations

from qteach import catalog
from qteach._validate import require_str

NAIVE = "naive binarization"
QUANTIZATION_ERROR = "minimize the quantization error"
LOSS = "improve the network loss"
GRADIENT = "reduce the gradient error"
HARDWARE = "hardware-friendly design"
TRICKS = "training tricks"
STRUCTURE = "network structure (the book's)"
ANALYSIS = "analyses and other binary models (the book's)"

#: The categories: name -> what a method of the category changes. The first six are the survey's (abstract and
#: highlights of arXiv 2004.03333); the last two are the book's.
TAXONOMY = {
    NAIVE: "binarize weights and activations directly with a fixed function (sign) and train through a "
           "straight-through estimator, with no extra term to reduce the loss of information",
    QUANTIZATION_ERROR: "make the binary tensors approximate the real ones better: scaling factors, several binary "
                        "bases, balanced or rotated weights",
    LOSS: "change what the network is trained to minimise: a term for the binarization (loss-aware, proximal, "
          "entropy) or a real-valued teacher (distillation)",
    GRADIENT: "replace or reshape the gradient of the sign (the straight-through estimator's mismatch)",
    HARDWARE: "make the binary network cheap on a processor, FPGA, ASIC or memory: packed kernels, accelerators, "
              "pipelines",
    TRICKS: "training recipes: optimizer, learning rate, clipping, initialisation, schedules, progressive "
            "binarization",
    STRUCTURE: "change the network around the binary layer: real-valued shortcuts, dense or depth-wise blocks, "
               "branches, ensembles, pruning",
    ANALYSIS: "measure or explain binary networks, or binary models beyond image classifiers",
}
#: The categories named by the survey's abstract; the others are the book's.
SURVEY_CATEGORIES = (NAIVE, QUANTIZATION_ERROR, LOSS, GRADIENT, HARDWARE, TRICKS)

#: Every binarization chapter of the book (catalog tag Binarization, except the survey itself) -> (category,
#: one-line reason). Our placement: see the module docstring.
CHAPTERS = {
    "binaryconnect": (NAIVE, "sign of the weights, latent real weights, no scale"),
    "bitwise_nn": (NAIVE, "an all-binary network, binarized by compression and noisy backpropagation"),
    "binarized_neural_networks": (NAIVE, "sign weights and activations, Htanh straight-through estimator"),
    "xnor_net": (QUANTIZATION_ERROR, "one analytic scale per filter and a scale map for the input"),
    "hashing_to_cnns": (QUANTIZATION_ERROR, "binary codes and scales that preserve inner products"),
    "abc_net": (QUANTIZATION_ERROR, "weights and activations as sums of several scaled binary bases"),
    "rebnet": (QUANTIZATION_ERROR, "residual binarization: activations as a sum of scaled sign levels"),
    "semi_binary_decomposition": (QUANTIZATION_ERROR, "W factored into two binary matrices and a diagonal"),
    "xnor_net_plus_plus": (QUANTIZATION_ERROR, "one learned scale in place of XNOR-Net's analytic ones"),
    "trained_binarization": (QUANTIZATION_ERROR, "learned scales (and a tighter sign gradient)"),
    "channel_wise_interactions": (QUANTIZATION_ERROR, "an interacted bitcount that corrects sign flips of features"),
    "piecewise_approximation": (QUANTIZATION_ERROR, "binary bases fit piece by piece over the weight range"),
    "rotated_bnn": (QUANTIZATION_ERROR, "weights rotated towards their sign vector: a smaller angular error"),
    "loss_aware_binarization": (LOSS, "binarization as a proximal Newton step on the loss"),
    "proxquant": (LOSS, "a regularizer towards the binary set and prox steps instead of the STE"),
    "information_capacity": (LOSS, "an entropy penalty on each binary filter added to the loss"),
    "distillation_guided_residual": (LOSS, "block-wise distillation from a float teacher (and a real branch)"),
    "real_to_binary": (LOSS, "attention matching to a real-valued teacher (and a gated, scaled block)"),
    "blended_coarse_gradient_descent": (GRADIENT, "a coarse gradient applied to a blend of W and Q(W)"),
    "bnn_plus": (GRADIENT, "the SignSwish derivative in place of the STE's box"),
    "self_binarizing_networks": (GRADIENT, "a tanh that sharpens into the sign while training"),
    "ir_net": (GRADIENT, "EDE's sharpening tanh gradient (and Libra-PB's balanced weights)"),
    "binaryduo": (GRADIENT, "ternary activations mismatch less, then split into two binary ones"),
    "competitive_bnn_from_scratch": (TRICKS, "a simple from-scratch recipe; which tricks matter"),
    "bnn_optimisation_study": (TRICKS, "Adam, gradient and weight clipping, and when to switch them on"),
    "improved_bnn_training": (TRICKS, "activations, reverse-order init, progressive quantization, distillation"),
    "recursive_bnn_training": (TRICKS, "freeze trained weights to one bit and reuse the freed storage"),
    "random_partition_relaxation": (TRICKS, "relax a random part of the weights, retrain, freeze, repeat"),
    "binarynet": (HARDWARE, "the XNOR-popcount kernel on packed bits"),
    "gpu_outperforming_fpga_bcnn": (HARDWARE, "a fully pipelined binary CNN on an FPGA"),
    "bnn_on_fpga_thesis": (HARDWARE, "batch norm folded into thresholds on FPGA logic"),
    "binary_weight_cnn_architecture": (HARDWARE, "add/subtract units and approximate adders in a chip"),
    "bitflow": (HARDWARE, "channel packing and SIMD for binary convolution on CPUs"),
    "bitstream": (HARDWARE, "a computation flow that stays in bits on CPUs"),
    "stochastic_weights_fpga": (HARDWARE, "stochastic binary weights and their FPGA area"),
    "similarity_reuse_fpga": (HARDWARE, "reuse across similar inputs and kernels skips XNOR work"),
    "reconfigurable_bt_processor": (HARDWARE, "a 28 nm processor for binary and ternary weights"),
    "dabnn": (HARDWARE, "SIMD bit-packing and direct binary convolution on ARM"),
    "rram_product_engine": (HARDWARE, "binary kernels stored and computed in RRAM"),
    "bagged_bnn_accelerator": (HARDWARE, "several small BNN pipelines with a bagging vote"),
    "group_net": (STRUCTURE, "each float group rebuilt from several binary branches"),
    "main_subsidiary_pruning": (STRUCTURE, "filters of a binary network pruned by a learned mask"),
    "bnn_pruning_flip_frequency": (STRUCTURE, "pruning by how often each weight's sign flips"),
    "balanced_circulant_bcn": (STRUCTURE, "circulant binary filters"),
    "circulant_bcn": (STRUCTURE, "rotated copies of each filter in binary convolutions"),
    "dual_path_bnn": (STRUCTURE, "a dual-path binary network"),
    "pxnor": (STRUCTURE, "fixed noise masks, then binary 1x1 convolutions"),
    "binary_ensemble": (STRUCTURE, "bagging and boosting several binary networks"),
    "accurate_bnn_from_scratch": (STRUCTURE, "dense shortcuts: real-valued features concatenated"),
    "meliusnet": (STRUCTURE, "dense blocks alternating with improvement blocks"),
    "mobinet": (STRUCTURE, "depth-wise separable binary blocks with shortcuts"),
    "simple_dynamic_bnn": (ANALYSIS, "a recurrent network with binary state and its periodic orbits"),
    "deep_binary_reconstruction": (ANALYSIS, "binary hash codes for two modalities"),
    "neuroevolved_bnn_rl": (ANALYSIS, "binary networks evolved without gradients for control tasks"),
    "bn_in_binary_training": (ANALYSIS, "why batch norm matters in binary training"),
    "information_bottleneck_bnn": (ANALYSIS, "the information plane of binary training"),
}

#: One method per category of the survey for the results pages' MLP protocol (catalog slug, and the name of its
#: ``comparison.Method`` where a slug has several).
REPRESENTATIVES = {
    NAIVE: ("binarized_neural_networks", "BNN"),
    QUANTIZATION_ERROR: ("xnor_net", "XNOR-Net"),
    LOSS: ("information_capacity", None),
    GRADIENT: ("ir_net", None),
}


def binarization_chapters() -> list[str]:
    """The slugs of the catalog's Binarization papers that have a notebook, the survey excepted."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    return [p.slug for p in catalog.papers() if "Binarization" in p.tags and p.slug != "bnn_survey"
            and (root / p.notebook).exists()]


def category_of(slug) -> str:
    """The category :data:`CHAPTERS` places the chapter ``slug`` in."""
    require_str(slug, "slug")
    if slug not in CHAPTERS:
        raise ValueError(f"slug {slug!r} is not a placed binarization chapter")
    return CHAPTERS[slug][0]


def chapters_in(category) -> list[str]:
    """The slugs placed in ``category`` (a key of :data:`TAXONOMY`), in catalog (year) order."""
    require_str(category, "category")
    if category not in TAXONOMY:
        raise ValueError(f"category must be one of {list(TAXONOMY)}, got {category!r}")
    order = {p.slug: i for i, p in enumerate(catalog.papers())}
    return sorted((s for s, (c, _) in CHAPTERS.items() if c == category), key=order.get)


def counts_by_year(up_to=None) -> dict:
    """Chapters per category published up to year ``up_to`` (all when None): ``{category: count}``."""
    if up_to is not None and (isinstance(up_to, bool) or not isinstance(up_to, int)):
        raise TypeError(f"up_to must be a year (int) or None, got {type(up_to).__name__}")
    year = {p.slug: p.year for p in catalog.papers()}
    return {c: sum(1 for s in chapters_in(c) if up_to is None or year[s] <= up_to) for c in TAXONOMY}


def taxonomy_rows() -> list[list[str]]:
    """One row per category: its name, whose category it is, how many chapters, and their short titles."""
    rows = []
    for category in TAXONOMY:
        slugs = chapters_in(category)
        names = ", ".join(catalog.paper(s).short_title for s in slugs)
        rows.append([category, "survey" if category in SURVEY_CATEGORIES else "book", len(slugs), names])
    return rows


def taxonomy_figure():
    """A slider figure: chapters per category, counted up to each year (the slider) from 2015 to 2020."""
    from plotly import graph_objects as go

    from qteach import viz

    steps = {}
    for year in catalog.YEARS:
        counts = counts_by_year(year)
        steps[str(year)] = [go.Bar(x=list(counts.values()), y=list(counts), orientation="h",
                                   marker_color=["#1f77b4"] * 6 + ["#7f7f7f"] * 2, name=f"up to {year}")]
    return viz.slider_figure(steps, "The book's binarization chapters in the survey's taxonomy",
                             "chapters (count)", "category", "published up to", active=len(steps) - 1,
                             yaxis={"autorange": "reversed"}, showlegend=False, margin={"l": 300})


def representative_methods() -> list:
    """The ``comparison.Method`` of each category's representative (:data:`REPRESENTATIVES`), 1/1 bits."""
    from qteach import comparison

    chosen = []
    for slug, name in REPRESENTATIVES.values():
        found = [m for m in comparison.methods() if m.paper == slug and (1, 1) in m.configs
                 and (name is None or m.name == name)]
        if len(found) != 1:
            raise LookupError(f"expected one 1/1 method of {slug!r} in comparison.methods(), found {len(found)}")
        chosen.append(found[0])
    return chosen

