"""The results page's protocol: every method builds the same architecture and runs under the same rules."""

from __future__ import annotations

import dataclasses

import pytest
from torch import nn

from qteach import comparison
from qteach import nn as qnn

METHODS = comparison.methods()


def test_methods_are_named_after_catalog_papers():
    from qteach import catalog

    assert METHODS[0].name == "Full precision" and METHODS[0].configs == ((32, 32),)
    for method in METHODS[1:]:
        catalog.paper(method.paper)
        assert method.configs
        if method.post_training is None:  # trained: it builds the MLP's layers, the CNN's blocks, or both
            assert method.layer is not None or method.conv_block is not None
        else:
            assert method.layer is None and method.fit is None


def test_every_configuration_is_on_exactly_one_page_per_architecture():
    for method in METHODS[1:]:
        for w_bits, a_bits in method.configs:
            for architecture in method.architectures:
                homes = [f.slug for f in comparison.FAMILIES
                         if f.architecture == architecture and f.holds(method, w_bits, a_bits)]
                assert len(homes) == 1, (method.name, w_bits, a_bits, architecture, homes)
    shown = [(m.name, c, f.architecture) for f in comparison.FAMILIES for m in comparison.in_family(METHODS, f)[1:]
             if m.paper not in f.references for c in m.configs]
    assert sorted(shown) == sorted((m.name, c, a) for m in METHODS[1:] for c in m.configs for a in m.architectures)


def test_pages_one_per_family_and_protocol():
    pages = comparison.pages()
    assert len(set(pages)) == len(pages) == sum(len(f.protocols) for f in comparison.FAMILIES)
    assert {"book/results/mnist1d_cnn_binary_cnn.ipynb", "book/results/mnist1d_cnn_binary_cnn_teacher.ipynb"} <= set(pages)
    assert pages[:2] == ["book/results/digits_binary_weights.ipynb", "book/results/mnist1d_binary_weights.ipynb"]
    assert comparison.family("from_trained").title == "Weights from a trained model"


def test_family_lookup_and_selection_errors():
    with pytest.raises(ValueError, match="family must be one of"):
        comparison.family("ternary")
    with pytest.raises(TypeError, match="family_"):
        comparison.in_family(METHODS, "binary_weights")


def test_a_family_keeps_the_baseline_and_only_its_configurations():
    selected = comparison.in_family(METHODS, comparison.family("binary_activations"))
    assert selected[0] is METHODS[0]
    assert {m.name for m in selected[1:]} == {"BNN", "DoReFa-Net", "Self-binarizing (tanh slope 1 to 100)",
                                             "BNN+ (SignSwish, beta = 5)", "Trained binarization (our reconstruction)",
                                             "Entropy penalty (lambda = 10, H* = 1 bit)", "IR-Net (Libra-PB + EDE)"}
    assert next(m for m in selected if m.name == "DoReFa-Net").configs == ((1, 1),)


def test_two_bit_activations_split_by_weight_bits():
    binary_weights = comparison.in_family(METHODS, comparison.family("two_bit_activations"))[1:]
    two_bit = comparison.in_family(METHODS, comparison.family("two_bit_networks"))[1:]
    assert {m.paper for m in binary_weights} == {"dorefa_net", "hwgq", "rebnet"}
    assert all(m.configs == ((1, 2),) for m in binary_weights)
    assert {m.paper for m in two_bit} == {"dorefa_net", "wrpn", "pact", "differentiable_soft_quantization",
                                          "good_distribution", "quantization_networks"}
    assert all(m.configs == ((2, 2),) for m in two_bit)


def test_binary_networks_that_change_the_scaling_have_their_own_page():
    scaling = comparison.in_family(METHODS, comparison.family("binary_scaling"))[1:]
    assert {m.name for m in scaling} >= {"XNOR-Net", "BMXNet-v2 (from scratch)", "PXNOR (noise level 0.5)",
                                         "XNOR-Net++ (learned scale per output)", "Improved BNN training (PReLU)"}
    assert all(m.changes in ("scaling", "architecture") and m.configs == ((1, 1),) for m in scaling)
    with pytest.raises(ValueError, match="changes must be one of"):
        comparison.Method("x", "xnor_net", ((1, 1),), layer=lambda w, a: (None, None, None), changes="scale")


@pytest.mark.parametrize("paper", ["loss_aware_binarization", "blended_coarse_gradient_descent", "pact", "admm_low_bit",
                                   "semi_binary_decomposition", "apprentice", "self_binarizing_networks", "bnn_plus",
                                   "trained_binarization", "proxquant", "quantization_networks", "metaquant",
                                   "unified_int8_training", "fully_quantized_detection", "information_capacity",
                                   "distillation_guided_residual", "ir_net", "rotated_bnn", "binaryduo",
                                   "random_partition_relaxation", "wageubn_int8_training"])
def test_methods_with_their_own_training_learn_in_two_epochs(paper):
    quick = dataclasses.replace(comparison.DIGITS, epochs=2)  # PACT at 2 bits, alpha = 6, is at chance after one
    method = next(m for m in METHODS if m.paper == paper)
    results = comparison.run([METHODS[0], method], seeds=(0,), baseline=METHODS[0], protocol=quick)
    assert all(0.3 < r.mean <= 1 for r in results[1:])  # chance is 0.1


def test_admm_leaves_ternary_weights_and_semi_binary_keeps_bwn_storage():
    from qteach.papers import semi_binary_decomposition as sbd

    quick = dataclasses.replace(comparison.DIGITS, epochs=1)
    data = comparison.split(quick)
    trained = comparison.protocol_mlp(METHODS[0], 32, 32)
    admm = next(m for m in METHODS if m.paper == "admm_low_bit")
    model = admm.post_training(trained, 2, data, 0, quick)
    for layer in [m for m in model.modules() if isinstance(m, qnn.QuantLinear)]:
        assert len(layer.weight.abs().unique()) <= 2  # {0, alpha}: ternary
    m, n = comparison.HIDDEN, comparison.HIDDEN
    k = max(k for k in range(1, n + 1) if sbd.storage_bits(m, n, k) <= sbd.bwn_storage_bits(m, n))
    assert sbd.storage_bits(m, n, k) <= sbd.bwn_storage_bits(m, n) < sbd.storage_bits(m, n, k + 1)


@pytest.mark.parametrize("method", [m for m in METHODS if m.layer is not None], ids=lambda m: m.name)
def test_every_method_builds_the_protocol_architecture(method):
    w_bits, a_bits = method.configs[0]
    model = comparison.protocol_mlp(method, w_bits, a_bits)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (64, comparison.HIDDEN), (comparison.HIDDEN, comparison.HIDDEN), (comparison.HIDDEN, comparison.HIDDEN),
        (comparison.HIDDEN, 10)]
    assert not isinstance(linears[0], qnn.QuantLinear) and not isinstance(linears[-1], qnn.QuantLinear)
    quantized = [m for m in linears if isinstance(m, qnn.QuantLinear)]
    assert len(quantized) == 2
    if w_bits < 32:
        assert all(qnn.precision_of(m.weight_quantizer) == w_bits for m in quantized)


def test_post_training_methods_have_no_layers():
    post = next(m for m in METHODS if m.post_training is not None)
    with pytest.raises(ValueError, match="post-training"):
        comparison.protocol_mlp(post, *post.configs[0])


def test_run_is_seeded_and_post_training_reuses_the_baseline():
    quick = dataclasses.replace(comparison.DIGITS, epochs=1)
    baseline = METHODS[0]
    post = next(m for m in METHODS if m.paper == "fine_grained_ternary")
    first = comparison.run([baseline, post], seeds=(0,), baseline=baseline, protocol=quick)
    second = comparison.run([baseline, post], seeds=(0,), baseline=baseline, protocol=quick)
    assert [r.accuracies for r in first] == [r.accuracies for r in second]
    assert all(0.5 < r.mean <= 1 for r in first)
    with pytest.raises(ValueError, match="baseline"):
        comparison.run([post], seeds=(0,), protocol=quick)


@pytest.mark.parametrize(("protocol", "features", "train", "test"), [
    (comparison.DIGITS, 64, 1347, 450), (comparison.MNIST1D, 40, 4000, 1000)])
def test_protocols_data_and_architecture(protocol, features, train, test):
    data = comparison.split(protocol)
    assert data.x_train.shape == (train, features) and data.x_test.shape == (test, features)
    assert set(data.y_train.tolist()) == set(range(10))
    model = comparison.protocol_mlp(METHODS[0], 32, 32, in_features=features)
    assert model(data.x_test[:3]).shape == (3, 10)
    text = comparison.describe_protocol(protocol=protocol).text
    assert f"{train} training and {test} test examples" in text and f"MLP {features} → " in text
    assert f"batch {protocol.batch_size}, {protocol.epochs} epochs" in text


def test_the_cnn_protocol_reads_signals_as_images_with_two_method_blocks():
    from qteach.papers import xnor_net

    data = comparison.split(comparison.MNIST1D_CNN)
    by_name = {m.name: m for m in comparison.in_family(METHODS, comparison.family("binary_cnn"))}
    assert {"Full precision", "BNN", "XNOR-Net"} <= set(by_name)
    for name, quantized in (("Full precision", 0), ("BNN", 2), ("XNOR-Net", 2)):
        model = comparison.protocol_model(by_name[name], *by_name[name].configs[0], comparison.MNIST1D_CNN, 40)
        assert model(data.x_test[:3]).shape == (3, 10)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
            (1, comparison.CNN_CHANNELS, comparison.CNN_KERNEL)] + 2 * [
            (comparison.CNN_CHANNELS, comparison.CNN_CHANNELS, comparison.CNN_KERNEL)]
        assert not isinstance(convs[0], qnn.QuantConv2d)  # the stem stays in full precision
        assert sum(getattr(c, "weight_quantizer", None) is not None for c in convs) == quantized
    xnor = comparison.protocol_cnn(by_name["XNOR-Net"], 1, 1)
    assert [type(m) for m in xnor.modules() if isinstance(m, qnn.QuantConv2d)] == 2 * [xnor_net.XNORConv2d]
    assert model[-1].in_features == comparison.CNN_CHANNELS * 10  # two poolings by 2: 40 -> 10
    text = comparison.describe_protocol(protocol=comparison.MNIST1D_CNN).text
    assert "1 × 40 image" in text and "4000 training and 1000 test examples" in text


def test_mlp_only_methods_are_not_on_the_cnn_page_and_cnn_only_ones_not_on_mlp_pages():
    dorefa = next(m for m in METHODS if m.paper == "dorefa_net")
    assert dorefa.architectures == ("mlp",)
    with pytest.raises(ValueError, match="MLP pages only"):
        comparison.protocol_cnn(dorefa, 1, 1)
    block_only = comparison.Method("blocks", "xnor_net", ((1, 1),), conv_block=METHODS[0].conv_block)
    assert block_only.architectures == ("cnn",)
    assert [f.slug for f in comparison.FAMILIES if f.holds(block_only, 1, 1)] == ["binary_cnn"]
    with pytest.raises(ValueError, match="length"):
        comparison.protocol_cnn(METHODS[0], 32, 32, length=42)
    with pytest.raises(ValueError, match="architecture"):
        dataclasses.replace(comparison.MNIST1D, architecture="rnn")


def test_the_cnn_pages_split_by_what_the_paper_changes_and_keep_a_reference():
    pages = {slug: [m.paper for m in comparison.in_family(METHODS, comparison.family(slug))]
             for slug in ("binary_cnn", "binary_cnn_teacher", "binary_cnn_blocks")}
    assert pages == {"binary_cnn": ["", "binarized_neural_networks", "xnor_net"],
                     "binary_cnn_teacher": ["", "xnor_net", "real_to_binary"],
                     "binary_cnn_blocks": ["", "meliusnet", "mobinet"]}
    cnn_only = [m for m in METHODS if m.paper in ("real_to_binary", "meliusnet", "mobinet")]
    assert len(cnn_only) == 3 and all(m.architectures == ("cnn",) for m in cnn_only)  # the 2020 blocks
    real_to_binary = cnn_only[0]
    assert real_to_binary.post_training is not None and not comparison.family("from_trained").holds(
        real_to_binary, 1, 1)


def test_three_and_eight_bit_methods_have_their_own_pages():
    three = comparison.in_family(METHODS, comparison.family("multibit_activations"))[1:]
    eight = comparison.in_family(METHODS, comparison.family("eight_bit_training"))[1:]
    assert {m.paper for m in three} == {"abc_net", "piecewise_approximation"}
    assert {m.paper for m in eight} == {"integer_arithmetic_only", "unified_int8_training", "wageubn_int8_training"}
    assert all(m.configs == ((8, 8),) for m in eight)


@pytest.mark.parametrize("paper", ["real_to_binary", "meliusnet", "mobinet"])
def test_the_2020_cnn_blocks_learn_in_two_epochs(paper):
    quick = dataclasses.replace(comparison.MNIST1D_CNN, epochs=2)
    method = next(m for m in METHODS if m.paper == paper)
    baseline, result = comparison.run([METHODS[0], method], seeds=(0,), baseline=METHODS[0], protocol=quick)
    assert 0.15 < result.mean <= 1 and baseline.mean > 0.3, (result, baseline)  # chance is 0.1


def test_a_cnn_protocol_run_learns_and_binary_blocks_train():
    quick = dataclasses.replace(comparison.MNIST1D_CNN, epochs=1)
    methods_ = comparison.in_family(METHODS, comparison.family("binary_cnn"))
    results = comparison.run(methods_[:3], seeds=(0,), baseline=methods_[0], protocol=quick)
    assert all(0.15 < r.mean <= 1 for r in results), results  # chance is 0.1


def test_a_protocol_run_on_mnist1d():
    quick = dataclasses.replace(comparison.MNIST1D, epochs=1)
    (result,) = comparison.run([METHODS[0]], seeds=(0,), baseline=METHODS[0], protocol=quick)
    assert 0.2 < result.mean < 1  # one epoch learns something (chance is 0.1)


def _fake_results(names, configs=((1, 32), (2, 2))):
    return [comparison.Result(name, "", w, a, [0.9 + 0.001 * i, 0.91]) for i, name in enumerate(names)
            for w, a in configs]


def test_the_figure_gives_every_method_its_own_colour_and_marker():
    pages = [comparison.in_family(METHODS, f) for f in comparison.FAMILIES]
    assert len(comparison.METHOD_STYLES) >= max(len(page) - 1 for page in pages)  # every method of a page has one
    names = [m.name for m in max(pages, key=len)[1:]]
    assert len({c for c, _ in comparison.METHOD_STYLES}) == len(comparison.METHOD_STYLES)
    assert len({s for _, s in comparison.METHOD_STYLES}) == len(comparison.METHOD_STYLES)
    baseline = comparison.Result("Full precision", "", 32, 32, [0.97, 0.98])
    fig = comparison.accuracy_figure([baseline, *_fake_results(names)], baseline=baseline)
    assert [t.name for t in fig.data] == names                                # one trace per method, in order
    assert len({t.marker.color for t in fig.data}) == len({t.marker.symbol for t in fig.data}) == len(names)
    assert all(t.line.color == t.marker.color for t in fig.data)
    assert list(fig.data[0].x) == ["W2/A2", "W1/A32"]                         # activation bits grow to the right
    assert fig.data[0].y[0] == 90.5 and fig.layout.shapes[0].y0 == 97.5       # percent; the baseline's line
    with pytest.raises(ValueError, match="style"):
        comparison.accuracy_figure(_fake_results([f"m{i}" for i in range(len(comparison.METHOD_STYLES) + 1)]))
    with pytest.raises(ValueError, match="besides the baseline"):
        comparison.accuracy_figure([baseline], baseline=baseline)
