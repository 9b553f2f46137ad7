"""The self-checks of the chapter on BinaryDenseNet: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest

from qteach.exercises import accurate_bnn_from_scratch as ex
from qteach.papers import accurate_bnn_from_scratch as ab

LABEL = "ex-accurate_bnn_from_scratch-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def final_features(block_config, reductions, init_features=64, growth=64):
    features = init_features
    for i, blocks in enumerate(block_config):
        features += blocks * growth
        if i < len(block_config) - 1:
            features = round((features // reductions[i]) / 32) * 32
    return features


def final_features_with_module(block_config, reductions, init_features=64, growth=64):
    """Another correct answer: the module's transition_features, returned as a float."""
    features = init_features + block_config[0] * growth
    for reduction, blocks in zip(reductions, block_config[1:]):
        features = ab.transition_features(features, reduction) + blocks * growth
    return float(features)


def test_check_1_passes(capsys):
    ex.check_1(final_features)
    out = capsys.readouterr().out
    assert "✅ ex-accurate_bnn_from_scratch-1 passed" in out and "576, 640 and 800" in out
    ex.check_1(final_features_with_module)


def _no_last_stage(b, r, i=64, g=64):
    return final_features(b, r, i, g) - b[-1] * g


@pytest.mark.parametrize("wrong,hint", [
    (lambda b, r, i=64, g=64: ex._final(b, r, i, g, rounding=int), "nearest multiple of 32"),
    (_no_last_stage, "last stage"),
    (lambda b, r, i=64, g=64: sum(b) * g + i, "transitions between stages reduce"),
    (lambda b, r, i=64, g=64: 0, "start from init_features"),
    (lambda b, r, i=64, g=64: "576", "should be a"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def transition_macs(in_features, out_features, structure):
    binary = full = 0
    features = in_features
    for layer in structure.split(","):
        if layer in ("max_pool", "pool"):
            features //= 2
        elif layer in ("fp_conv", "q_conv"):
            if layer == "fp_conv":
                full += features * out_features
            else:
                binary += features * out_features
            features = out_features
    return binary, full


def transition_macs_from_module(in_features, out_features, structure):
    """Another correct answer: build the module's transition and count its layers' weights, as a list."""
    block = ab.transition(in_features, out_features, structure)
    binary = sum(m.weight.numel() for m in ab.binary_layers(block))
    total = sum(m.weight.numel() for m in block.modules() if isinstance(m, ab.qnn.QuantLinear))
    return [binary, total - binary]


def test_check_2_passes(capsys):
    ex.check_2(transition_macs)
    assert "✅ ex-accurate_bnn_from_scratch-2 passed" in capsys.readouterr().out
    ex.check_2(transition_macs_from_module)


@pytest.mark.parametrize("wrong,hint", [
    (lambda n, m, s: transition_macs(n, m, s)[::-1], "other order"),
    (lambda n, m, s: (sum(transition_macs(n, m, s)), 0), "not their kind"),
    (lambda n, m, s: transition_macs(n, m, s.replace("max_pool", "bn").replace("pool", "bn")), "halves"),
    (lambda n, m, s: (n * m, 0), "walk through"),
    (lambda n, m, s: n * m, "return a pair"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
