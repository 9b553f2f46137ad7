"""Tests of qteach.papers.metaquant against hand-computed values, the paper's equations (preprint in the official
repository, ``MetaQuant-Preprint.pdf``), PyTorch's Adam, and a line-by-line transcription of the official code
(https://github.com/csyhhu/MetaQuant at commit 5069440, files and lines cited at each transcription)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import comparison, train
from qteach import data as qdata
from qteach import nn as qnn
from qteach.papers import metaquant as mq


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- transcriptions of the official code ------------------------------------------------------------------------


class OfficialMetaDesignedMultiFC(nn.Module):
    """meta_utils/meta_network.py l. 115-141 (use_nonlinear None, relu or tanh)."""

    def __init__(self, hidden_size=10, num_layers=4, use_nonlinear="relu"):
        super().__init__()
        self.network = nn.Sequential()
        for layer_idx in range(num_layers):
            in_features = 1 if layer_idx == 0 else hidden_size
            out_features = 1 if layer_idx == (num_layers - 1) else hidden_size
            self.network.add_module(f"Linear{layer_idx}", nn.Linear(in_features, out_features, bias=False))
            if layer_idx != (num_layers - 1):
                if use_nonlinear == "relu":
                    self.network.add_module(f"ReLU{layer_idx}", nn.ReLU())
                elif use_nonlinear == "tanh":
                    self.network.add_module(f"Tanh{layer_idx}", nn.Tanh())

    def forward(self, x):
        return self.network(x)


def official_multifc_meta_grad(meta_net, grad, pre_quantized_weight):
    """meta_utils/helpers.py l. 44-55 and 81: the 'MultiFC' branch of meta_gradient_generation."""
    flatten_grad = grad.data.view(-1, 1)
    flatten_weight = pre_quantized_weight.data.view(-1, 1)
    meta_output = meta_net(flatten_weight)
    meta_grad = flatten_grad * meta_output
    return meta_grad.reshape(grad.shape)


def official_dorefa_linear_forward(weight, bitW):
    """meta_utils/meta_quantized_module.py l. 213-216 with Function_STE (utils/quantize.py l. 29-42)."""

    class FunctionSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, weight, bitW):
            ctx.save_for_backward(weight)
            n = float(2 ** bitW - 1)
            return torch.round(weight * n) / n

        @staticmethod
        def backward(ctx, grad_outputs):
            weight, = ctx.saved_tensors
            gate = (torch.abs(weight) <= 1).float()
            return grad_outputs * gate, None

    temp_weight = torch.tanh(weight)
    pre_quantized_weight = (temp_weight / torch.max(torch.abs(temp_weight)).detach()) * 0.5 + 0.5
    return pre_quantized_weight, 2 * FunctionSTE.apply(pre_quantized_weight, bitW) - 1


def official_calibration_dorefa(weight):
    """meta_utils/meta_quantized_module.py l. 184-186 (MetaQuantLinear)."""
    return 1.0 / (torch.max(torch.abs(torch.tanh(weight.data))).detach()) \
        * (1 - torch.pow(torch.tanh(weight.data), 2)).detach()


# --- pre-processing, calibration, quantizer -----------------------------------------------------------------------


def test_preprocess_hand_values():
    w = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    t = torch.tanh(w)
    expected = t / (2 * torch.tanh(torch.tensor(1.0, dtype=torch.float64))) + 0.5  # eq. 1
    assert torch.allclose(mq.preprocess(w, "dorefa"), expected)
    assert mq.preprocess(w, "dorefa")[0].item() == 0.5 and mq.preprocess(w, "dorefa")[2].item() == 0.0
    assert torch.equal(mq.preprocess(w, "bwn"), w)  # eq. 2


def test_calibration_equals_the_official_code_and_half_the_true_derivative():
    w = randn(7, 5, seed=1)
    assert torch.allclose(mq.calibration(w, "dorefa"), official_calibration_dorefa(w))
    assert torch.equal(mq.calibration(w, "bwn"), torch.ones_like(w))
    # the true derivative of eq. 1 (maximum held constant) is half of eq. 4's calibration
    x = w.clone().requires_grad_()
    mq.preprocess(x, "dorefa").sum().backward()
    assert torch.allclose(x.grad, 0.5 * mq.calibration(w, "dorefa"), atol=1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_dorefa_quantizer_equals_the_official_forward_and_backward(bits):
    w = randn(6, 9, seed=bits)
    x1, x2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    ours = mq.quantize(mq.preprocess(x1, "dorefa"), "dorefa", bits)
    _, official = official_dorefa_linear_forward(x2, bits)
    assert torch.equal(ours, official)
    assert len(torch.unique(ours)) <= 2 ** bits and ours.abs().max().item() == 1.0
    g = randn(6, 9, seed=10)
    ours.backward(g)
    official.backward(g)
    assert torch.allclose(x1.grad, x2.grad, atol=1e-7)


def test_bwn_quantizer_hand_values_and_ste_gradient():
    w = torch.tensor([0.5, -1.5, 0.25, -0.75], requires_grad=True)
    q = mq.quantize(w, "bwn", 1)
    assert torch.allclose(q, torch.tensor([0.75, -0.75, 0.75, -0.75]))  # alpha = mean |w| = 0.75, eq. 2
    q.backward(torch.ones(4))
    assert torch.allclose(w.grad, torch.tensor([0.75, 0.0, 0.75, 0.75]))  # alpha * 1_{|w| <= 1}


# --- meta network and meta gradient --------------------------------------------------------------------------------


@pytest.mark.parametrize("layers,nonlinear", [(2, None), (3, None), (3, "relu"), (3, "tanh")])
def test_meta_gradient_equals_the_official_multifc_branch(layers, nonlinear):
    torch.manual_seed(0)
    ours = mq.MultiFC(hidden=12, layers=layers, nonlinear=nonlinear)
    official = OfficialMetaDesignedMultiFC(hidden_size=12, num_layers=layers, use_nonlinear=nonlinear)
    official.load_state_dict(_renamed(ours))
    g, w_tilde = randn(4, 6, seed=2), torch.rand(4, 6, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(mq.meta_gradient(ours, g, w_tilde), official_multifc_meta_grad(official, g, w_tilde),
                          atol=1e-7)


def _renamed(meta: mq.MultiFC) -> dict:
    """Our Sequential numbers activations too; the official one names only the Linear layers."""
    linears = [m for m in meta.net if isinstance(m, nn.Linear)]
    return {f"network.Linear{i}.weight": m.weight.detach().clone() for i, m in enumerate(linears)}


def test_linear_multifc_is_one_number_times_the_weight():
    torch.manual_seed(4)
    meta = mq.MultiFC(hidden=100, layers=2)  # the paper's CIFAR setting, no non-linearity
    c = (meta.net[1].weight @ meta.net[0].weight).item()
    g, w_tilde = randn(3, 5, seed=5), torch.rand(3, 5)
    assert torch.allclose(mq.meta_gradient(meta, g, w_tilde), c * g * w_tilde, atol=1e-6)


def test_symmetric_init_starts_at_c_equal_one():
    for layers in (2, 3):
        meta = mq.MultiFC(hidden=9, layers=layers, symmetric_init=True)
        w_tilde = torch.rand(4, 3)
        assert torch.allclose(meta(w_tilde), w_tilde, atol=1e-6)


def test_negative_factor_steps_uphill():
    """With c < 0 the linear MultiFC on DoReFa's W~ > 0 reverses every gradient: one small step raises the loss."""
    meta = mq.MultiFC(hidden=4, layers=2, symmetric_init=True)
    with torch.no_grad():
        meta.net[1].weight.mul_(-1)
    w = randn(20, seed=12)
    target = randn(20, seed=13)
    w_tilde = mq.preprocess(w, "dorefa")
    loss = lambda v: ((v - target) ** 2).sum()
    x = w_tilde.clone().requires_grad_()
    loss(x).backward()
    step = mq.meta_gradient(meta, x.grad, w_tilde)
    assert loss(w_tilde - 0.01 * step) > loss(w_tilde) > loss(w_tilde + 0.01 * step)


def test_meta_gradient_depends_on_phi_only():
    meta = mq.MultiFC(hidden=8, layers=2)
    g, w_tilde = randn(5, seed=6).requires_grad_(), torch.rand(5).requires_grad_()
    out = mq.meta_gradient(meta, g, w_tilde)
    out.sum().backward()
    assert g.grad is None and w_tilde.grad is None
    assert all(p.grad is not None for p in meta.parameters())


def test_ste_gradient_is_the_clipped_identity():
    g = torch.tensor([1.0, -2.0, 3.0, 4.0])
    w_tilde = torch.tensor([0.5, -1.0, 1.5, -2.0])
    assert torch.equal(mq.ste_gradient(g, w_tilde), torch.tensor([1.0, -2.0, 0.0, 0.0]))


# --- refinement pi (eq. 5) -------------------------------------------------------------------------------------------


def test_adam_refinement_reproduces_torch_adam():
    w0 = randn(10, seed=7)
    w_ref = w0.clone().requires_grad_()
    opt = torch.optim.Adam([w_ref], lr=0.01)
    refine, w = mq.Refinement("adam"), w0.clone()
    for step in range(5):
        g = randn(10, seed=20 + step)
        w_ref.grad = g.clone()
        opt.step()
        w = w - 0.01 * refine(g)
    assert torch.allclose(w, w_ref.detach(), atol=1e-6)
    assert torch.equal(mq.Refinement("sgd")(g), g)


def test_adam_refinement_ignores_a_constant_positive_scale_per_coordinate():
    scale = torch.rand(10) + 0.1
    a, b = mq.Refinement("adam"), mq.Refinement("adam")
    for step in range(4):
        g = randn(10, seed=30 + step)
        da, db = a(g), b(g * scale)
    assert torch.allclose(da, db, atol=1e-4)


# --- the quantizer's forward with a pending update (eq. 6) ---------------------------------------------------------


def test_pending_update_value_is_delta_and_gradient_reaches_phi():
    torch.manual_seed(8)
    meta = mq.MultiFC(hidden=6, layers=2)
    weight = nn.Parameter(randn(3, 4, seed=9))
    q = mq.MetaQuantizer("dorefa", 1)
    q.lr = 0.1
    g_hat, w_tilde = randn(3, 4, seed=11), torch.rand(3, 4)
    g_w = mq.meta_gradient(meta, g_hat, w_tilde) * mq.calibration(weight.detach(), "dorefa")
    delta = torch.full((3, 4), 0.5)  # any refined step: the forward value must use it
    q.pending = (g_w, delta)
    out = q(weight)
    expected = mq.quantize(mq.preprocess(weight.detach() - 0.1 * delta, "dorefa"), "dorefa", 1)
    assert torch.equal(out, expected)
    assert torch.allclose(q.w_tilde, mq.preprocess(weight.detach() - 0.1 * delta, "dorefa"))
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in meta.parameters())
    assert q.g_hat is not None and torch.equal(q.g_hat, torch.ones(3, 4))


def test_official_trick_has_the_refined_value_and_the_raw_gradient():
    """meta_quantized_module.py l. 196-198: value W - lr * W.grad, derivative -lr * d(calibrated)/d(phi)."""
    phi = torch.tensor(2.0, requires_grad=True)
    weight, raw, refined, lr = torch.tensor([1.0, -1.0]), torch.tensor([0.3, 0.6]), torch.tensor([1.0, 1.0]), 0.1
    calibrated = phi * raw
    meta_weight = weight - lr * (calibrated + (refined - calibrated).detach())
    assert torch.allclose(meta_weight, weight - lr * refined)
    meta_weight.sum().backward()
    assert phi.grad.item() == pytest.approx(-lr * raw.sum().item())


# --- training loop ------------------------------------------------------------------------------------------------


def _tiny(kind="dorefa"):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(),
                         qnn.QuantLinear(16, 16, weight_quantizer=mq.MetaQuantizer(kind, 1)), nn.ReLU(),
                         nn.Linear(16, 3))


def _blobs():
    return qdata.blobs(num_samples=240, num_features=8, num_classes=3, spread=0.6, seed=0)


def test_fit_trains_and_keeps_binary_weights():
    model, data = _tiny(), _blobs()
    before = model[2].weight.detach().clone()
    meta = mq.MultiFC(hidden=10, layers=2, symmetric_init=True)
    meta_before = [p.detach().clone() for p in meta.parameters()]
    losses = mq.fit(model, data, meta, epochs=8, lr=0.01, batch_size=32, seed=0)
    assert losses[-1] < losses[0]
    assert not torch.equal(model[2].weight, before)
    assert any(not torch.equal(a, b) for a, b in zip(meta_before, meta.parameters()))
    assert train.evaluate(model, data.x_test, data.y_test) > 0.6
    assert set(torch.unique(model[2].quantized_weight()).tolist()) <= {-1.0, 1.0}


def test_first_step_does_not_update_the_quantized_weight():
    model, data = _tiny(), _blobs()
    data = qdata.Split(data.x_train[:32], data.y_train[:32], data.x_test, data.y_test)
    before = model[2].weight.detach().clone()
    mq.fit(model, data, mq.MultiFC(4, 2), epochs=1, batch_size=32, seed=0)  # exactly one step
    assert torch.equal(model[2].weight, before)


def test_ste_in_the_loop_trains_with_sgd():
    """meta=None and "sgd": the STE in the same loop, pi = identity (eq. 5)."""
    model, data = _tiny("bwn"), _blobs()
    losses = mq.fit(model, data, None, epochs=5, lr=0.05, batch_size=32, refinement="sgd", seed=1)
    assert losses[-1] < losses[0]


def test_fit_is_deterministic():
    a, b, data = _tiny(), _tiny(), _blobs()
    torch.manual_seed(1)
    ma = mq.MultiFC(6, 2)
    torch.manual_seed(1)
    mb = mq.MultiFC(6, 2)
    mq.fit(a, data, ma, epochs=2, seed=3)
    mq.fit(b, data, mb, epochs=2, seed=3)
    assert torch.equal(a[2].weight, b[2].weight)


def test_comparison_layer_and_protocol_fit():
    method = comparison.Method("MetaQuant", "metaquant", ((1, 32),), layer=mq.comparison_layer,
                               fit=mq.protocol_fit)
    data = qdata.digits(flatten=True, seed=0)
    data = qdata.Split(data.x_train[:256], data.y_train[:256], data.x_test[:128], data.y_test[:128])
    torch.manual_seed(0)
    model = comparison.protocol_mlp(method, 1, 32, 64)
    assert len(mq.quantized_pairs(model)) == 2
    protocol = comparison.Protocol("tiny", "tiny", "", lambda: data, epochs=2, lr=3e-3, batch_size=64)
    losses = mq.protocol_fit(model, data, 0, protocol)
    assert len(losses) == 2
    with pytest.raises(ValueError, match="w_bits"):
        mq.comparison_layer(2, 32)


# --- bad input ------------------------------------------------------------------------------------------------------


def test_bad_input():
    w = torch.zeros(3)
    with pytest.raises(ValueError, match="kind"):
        mq.preprocess(w, "xnor")
    with pytest.raises(TypeError, match="w"):
        mq.preprocess([1.0], "bwn")
    with pytest.raises(ValueError, match="bits"):
        mq.quantize(w, "bwn", 2)
    with pytest.raises(ValueError, match="bits"):
        mq.MetaQuantizer("bwn", 2)
    with pytest.raises(ValueError, match="nonlinear"):
        mq.MultiFC(nonlinear="sigmoid")
    with pytest.raises(ValueError, match="hidden"):
        mq.MultiFC(hidden=0)
    with pytest.raises(ValueError, match="same shape"):
        mq.meta_gradient(mq.MultiFC(4), torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError, match="meta"):
        mq.meta_gradient(lambda x: x, torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="kind"):
        mq.Refinement("rmsprop")
    with pytest.raises(ValueError, match="model"):
        mq.fit(nn.Linear(8, 3), _blobs(), None)
    with pytest.raises(ValueError, match="refinement"):
        mq.fit(_tiny(), _blobs(), None, refinement="lbfgs")
    with pytest.raises(ValueError, match="lr"):
        mq.fit(_tiny(), _blobs(), None, lr=0)
