"""The results page's protocol: every method builds the same architecture and runs under the same rules."""

from __future__ import annotations

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
        assert method.configs and (method.layer is None) != (method.post_training is None)


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


def test_run_is_seeded_and_post_training_reuses_the_baseline(monkeypatch):
    monkeypatch.setattr(comparison, "EPOCHS", 1)
    baseline = METHODS[0]
    post = next(m for m in METHODS if m.paper == "fine_grained_ternary")
    first = comparison.run([baseline, post], seeds=(0,), baseline=baseline)
    second = comparison.run([baseline, post], seeds=(0,), baseline=baseline)
    assert [r.accuracies for r in first] == [r.accuracies for r in second]
    assert all(0.5 < r.mean <= 1 for r in first)
    with pytest.raises(ValueError, match="baseline"):
        comparison.run([post], seeds=(0,))
