"""Tests of qteach.papers.quantization_networks: the sum of sigmoids, its staircase limit, the official code.

The paper's method section could not be read (abstract and introduction only); the formulas are checked against
hand-computed values and against our transcriptions of the official code
(github.com/aliyun/alibabacloud-quantization-networks, commit 05522aa): anybit.py and models/quantization.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import comparison, data
from qteach import nn as qnn
from qteach.papers import quantization_networks as qn

TERNARY = torch.tensor([-1.0, 0.0, 1.0])


# --- transcriptions of the official code (PyTorch 0.3 code, Variable dropped, .cuda() dropped) -----------------


def official_sigmoid_t(x, b=0, t=1):
    """anybit.py lines 15-27."""
    temp = -1 * t * (x - b)
    temp = torch.clamp(temp, min=-10.0, max=10.0)
    return 1.0 / (1.0 + torch.exp(temp))


def official_step(x, bias):
    """anybit.py lines 29-36 (= models/quantization.py lines 55-62)."""
    y = torch.zeros_like(x)
    mask = torch.gt(x - bias, 0.0)
    y[mask] = 1.0
    return y


def official_quaop(values):
    """anybit.py lines 80-89: n, scales (gaps) and offset (half the sum of the gaps)."""
    n = len(values) - 1
    scales = []
    offset = 0.
    for i in range(n):
        gap = values[i + 1] - values[i]
        scales.append(gap)
        offset += gap
    return n, scales, offset / 2.


def official_weight_forward(x, T, quan_bias, values, train=True):
    """anybit.py lines 91-102 (QuaOp.forward)."""
    n, scales, offset = official_quaop(values)
    if train:
        y = official_sigmoid_t(x, b=quan_bias[0], t=T) * scales[0]
        for j in range(1, n):
            y += official_sigmoid_t(x, b=quan_bias[j], t=T) * scales[j]
    else:
        y = official_step(x, bias=quan_bias[0]) * scales[0]
        for j in range(1, n):
            y += official_step(x, bias=quan_bias[j]) * scales[j]
    return y - offset


def official_weight_backward(x, T, quan_bias, values):
    """anybit.py lines 104-111 (QuaOp.backward)."""
    n, scales, _ = official_quaop(values)
    y_1 = official_sigmoid_t(x, b=quan_bias[0], t=T) * scales[0]
    y_grad = (y_1.mul(scales[0] - y_1)).div(scales[0])
    for j in range(1, n):
        y_temp = official_sigmoid_t(x, b=quan_bias[j], t=T) * scales[j]
        y_grad += (y_temp.mul(scales[j] - y_temp)).div(scales[j])
    return y_grad


def official_activation_forward(inp, scales, n, b, T):
    """models/quantization.py lines 30-35 (SigmoidT.forward): no offset for activations."""
    buf = torch.clamp(T * (inp - b[0]), min=-10.0, max=10.0)
    output = scales[0] / (1.0 + torch.exp(-buf))
    for k in range(1, n):
        buf = torch.clamp(T * (inp - b[k]), min=-10.0, max=10.0)
        output += scales[k] / (1.0 + torch.exp(-buf))
    return output


def official_activation_backward(inp, scales, n, b, T, grad_output):
    """models/quantization.py lines 41-49 (SigmoidT.backward)."""
    b_buf = torch.clamp(T * (inp - b[0]), min=-10.0, max=10.0)
    b_output = scales[0] / (1.0 + torch.exp(-b_buf))
    temp = b_output * (1 - b_output) * T
    for j in range(1, n):
        b_buf = torch.clamp(T * (inp - b[j]), min=-10.0, max=10.0)
        b_output = scales[j] / (1.0 + torch.exp(-b_buf))
        temp += b_output * (1 - b_output) * T
    return temp * grad_output


# --- hand-computed values ----------------------------------------------------------------------------------------


def test_hand_values_ternary():
    b = torch.tensor([-0.5, 0.5])
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    # staircase: 1*[x > -0.5] + 1*[x > 0.5] - 1 (o = -q_0 = 1); A(0) = 0 at the biases themselves
    assert qn.quantization_function(x, TERNARY, b, math.inf).tolist() == [-1.0, -1.0, 0.0, 0.0, 1.0]
    # T = 1, x = 0: sigma(0.5) + sigma(-0.5) - 1 = 0 exactly (odd symmetry)
    assert qn.quantization_function(torch.tensor([0.0]), TERNARY, b, 1.0).item() == pytest.approx(0.0, abs=1e-7)
    # T = 2, x = 0.5: sigma(2) + sigma(0) - 1 = 0.880797 + 0.5 - 1 = 0.380797
    y = qn.quantization_function(torch.tensor([0.5]), TERNARY, b, 2.0).item()
    assert y == pytest.approx(1 / (1 + math.exp(-2)) - 0.5, abs=1e-6)
    # alpha and beta: alpha (sum - o) with beta x inside: x = 0.25, beta = 4 -> beta x = 1 > 0.5 -> level 1
    assert qn.quantization_function(torch.tensor([0.25]), TERNARY, b, math.inf, alpha=0.3, beta=4.0).item() \
        == pytest.approx(0.3)


def test_unequal_gaps_and_offset():
    levels = torch.tensor([-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0])  # the code's 3-bit weight levels
    b = torch.tensor([-3.0, -1.5, -0.5, 0.5, 1.5, 3.0])
    x = torch.tensor([-9.0, -2.5, -1.0, 0.2, 1.0, 2.0, 9.0])
    assert qn.quantization_function(x, levels, b, math.inf).tolist() == [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0]


def test_limit_is_staircase_and_monotone():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, generator=g, dtype=torch.float64) * 2
    b = torch.tensor([-0.7, 0.4], dtype=torch.float64)
    hard = qn.quantization_function(x, TERNARY.double(), b, math.inf)
    far = ((x[:, None] - b).abs().min(1).values > 1e-3)
    assert torch.equal(qn.quantization_function(x[far], TERNARY.double(), b, 1e5), hard[far])
    errors = [(qn.quantization_function(x, TERNARY.double(), b, t) - hard).abs().mean().item() for t in (1, 10, 100)]
    assert errors[0] > errors[1] > errors[2]
    ys = qn.quantization_function(x.sort().values, TERNARY.double(), b, 5.0)
    assert bool((ys.diff() >= 0).all())  # a sum of increasing sigmoids is increasing
    assert ys.min() > -1 and ys.max() < 1  # and stays within the levels


def test_true_gradient():
    x = torch.tensor([-0.3, 0.1, 0.6], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-0.5, 0.5], dtype=torch.float64)
    alpha, beta, T = 0.7, 1.3, 4.0
    qn.quantization_function(x, TERNARY.double(), b, T, alpha, beta).sum().backward()
    sig = torch.sigmoid(T * (beta * x.detach()[:, None] - b))
    expected = alpha * beta * T * (sig * (1 - sig)).sum(1)  # d y / dx = alpha beta T sum s_i sigma (1 - sigma)
    assert torch.allclose(x.grad, expected)


# --- the official code, transcribed ----------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[-1.0, 1.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0, 1.0, 2.0],
                                    [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0]])
def test_weight_function_equals_anybit(values):
    g = torch.Generator().manual_seed(len(values))
    w = torch.randn(500, generator=g, dtype=torch.float64) * 0.1
    levels = torch.tensor(values, dtype=torch.float64)
    biases = qn.cluster_biases(w, levels)
    beta = 1.25 * values[-1] / w.abs().max().item()  # anybit.py line 146
    alpha = 1 / beta  # anybit.py line 147
    x = w * beta  # anybit.py line 149
    for T in (1.0, 20.0, 200.0):
        ours = qn.quantization_function(w, levels, biases, T, alpha, beta)
        theirs = official_weight_forward(x, T, biases.tolist(), values) * alpha  # anybit.py line 153
        inside = ((T * (x[:, None] - biases)).abs() <= 10).all(1)  # where the code's clamp is inactive
        assert torch.allclose(ours[inside], theirs[inside], atol=1e-12)
        assert torch.allclose(ours, theirs, atol=5e-5 * sum(abs(v) for v in values))  # the clamp: < 4.6e-5 s_i
    hard = official_weight_forward(x, 1.0, biases.tolist(), values, train=False) * alpha
    assert torch.equal(qn.quantization_function(w, levels, biases, math.inf, alpha, beta), hard)


def test_weight_gradients_equal_anybit():
    """anybit.py lines 179-190 with line 181 (T inside the sigmoid, 'the other quantization model')."""
    values = [-1.0, 0.0, 1.0]
    g = torch.Generator().manual_seed(3)
    w0 = torch.randn(300, generator=g, dtype=torch.float64) * 0.1
    grad_out = torch.randn(300, generator=g, dtype=torch.float64)
    levels = torch.tensor(values, dtype=torch.float64)
    biases = qn.cluster_biases(w0, levels)
    T = 2.0
    alpha = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    w = w0.clone().requires_grad_(True)
    (qn.quantization_function(w, levels, biases, T, alpha, beta) * grad_out).sum().backward()
    x = w0 * beta.item()
    y_grad = official_weight_backward(x, T, biases.tolist(), values).mul(T)
    inside = ((T * (x[:, None] - biases)).abs() <= 10).all()
    assert inside  # the clamp does not act, so the formulas must agree to rounding
    beta_grad = y_grad.mul(w0).mul(alpha.item()).mul(grad_out).sum()
    alpha_grad = official_weight_forward(x, T, biases.tolist(), values).mul(grad_out).sum()
    w_grad = y_grad.mul(beta.item()).mul(alpha.item()).mul(grad_out)
    assert torch.allclose(w.grad, w_grad)
    assert beta.grad.item() == pytest.approx(beta_grad.item(), rel=1e-9)
    assert alpha.grad.item() == pytest.approx(alpha_grad.item(), rel=1e-9)


def test_activation_function_equals_quantization_py():
    """models/quantization.py: forward lines 131-143 (beta x, SigmoidT or step, times alpha), levels from 0."""
    values = [0.0, 1.0, 2.0, 3.0]
    g = torch.Generator().manual_seed(4)
    a = torch.randn(400, generator=g, dtype=torch.float64).clamp(-3, 3) * 0.7
    levels = torch.tensor(values, dtype=torch.float64)
    b = torch.tensor([0.2, 1.1, 2.3], dtype=torch.float64)
    scales, n = [1.0, 1.0, 1.0], 3  # init_scale_and_offset: the gaps
    alpha, beta, T = 0.9, 1.1, 1.5
    inp = a * beta
    theirs = official_activation_forward(inp, scales, n, b, T) * alpha
    assert ((T * (inp[:, None] - b)).abs() <= 10).all()
    assert torch.allclose(qn.quantization_function(a, levels, b, T, alpha, beta), theirs)
    hard = sum(official_step(inp, b[i]) * scales[i] for i in range(n)) * alpha
    assert torch.equal(qn.quantization_function(a, levels, b, math.inf, alpha, beta), hard)
    # SigmoidT.backward (lines 41-49) equals the true derivative when the gaps are 1 (it uses s*sig*(1 - s*sig))
    x = inp.clone().requires_grad_(True)
    grad_out = torch.randn(400, generator=g, dtype=torch.float64)
    (qn.quantization_function(x, levels, b, T) * grad_out).sum().backward()
    assert torch.allclose(x.grad, official_activation_backward(inp, scales, n, b, T, grad_out))


def test_cluster_biases_matches_cluster_py():
    """tools/cluster.py params_cluster (sklearn KMeans, boundary = midpoint of the straddling sorted values)."""
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    np = pytest.importorskip("numpy")
    g = torch.Generator().manual_seed(7)
    params = torch.cat([torch.randn(300, generator=g) * 0.05 + c for c in (-0.8, 0.0, 0.8)]).double()
    values = [-1.0, 0.0, 1.0]
    # transcription of params_cluster, lines 22-64
    max_value = abs(params.numpy()).max().tolist()
    threshold = values[-1] * 5 / 4.0
    pre = np.sort(params.numpy().reshape(-1, 1), axis=0) * (threshold / max_value)
    est = KMeans(n_clusters=len(values), n_init=10, random_state=0).fit(pre)
    label_pred = est.labels_
    temp, saved_index, j = label_pred[0], [0] * (len(values) - 1), 0
    for index, i in enumerate(label_pred):
        if i != temp:
            saved_index[j] = index
            j += 1
            temp = i
    boundary = [((pre[saved_index[i] - 1] + pre[saved_index[i]]) / 2).tolist()[0] for i in range(len(values) - 1)]
    ours = qn.cluster_biases(params, torch.tensor(values, dtype=torch.float64))
    assert ours.tolist() == pytest.approx(boundary, abs=1e-12)


def test_schedule_is_the_codes():
    assert [qn.temperature_schedule(e, 20.0) for e in range(3)] == [20.0, 40.0, 60.0]  # (epoch + 1) * 20
    assert qn.temperature_schedule(500, 20.0) == 2000.0  # capped as anybit.py line 143


def test_module_initialisation_and_modes():
    torch.manual_seed(0)
    w = torch.randn(64, 32) * 0.2
    q = qn.SigmoidQuantizer(TERNARY, temperature=5.0)
    q.train()
    soft = q(w)
    assert q.initialized
    assert q.beta.item() == pytest.approx(1.25 / w.abs().max().item())  # anybit.py line 146
    assert q.alpha.item() == pytest.approx(1 / q.beta.item())  # line 147
    assert not torch.equal(soft, q.eval()(w))
    hard = q(w) / q.alpha.detach()
    assert set(hard.round().unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.allclose(hard, hard.round(), atol=1e-6)
    q.train()
    qn.harden(q)
    assert torch.equal(q(w), q.eval()(w))
    assert q.precision == 2 and qn.SigmoidQuantizer(torch.tensor([-1.0, 1.0])).precision == 1


def test_fit_ends_exactly_quantized():
    digits = data.digits(flatten=True)
    small = data.Split(digits.x_train[:300], digits.y_train[:300], digits.x_test[:100], digits.y_test[:100])
    method = comparison.Method("QN", "quantization_networks", ((2, 2),), layer=qn.comparison_layer)
    torch.manual_seed(0)
    model = comparison.protocol_mlp(method, 2, 2)
    hist = qn.fit_quantization_network(model, small, epochs=2, batch_size=64, base=20.0)
    assert all(m.temperature == math.inf for m in model.modules() if isinstance(m, qn.SigmoidQuantizer))
    model.eval()
    for layer in model.modules():
        if isinstance(layer, qnn.QuantLinear):
            q = layer.weight_quantizer
            codes = layer.quantized_weight() / q.alpha
            assert set(codes.detach().round().unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert 0.0 <= hist.final_test_accuracy <= 1.0


def test_comparison_layer():
    w, i, a = qn.comparison_layer(2, 32)
    assert isinstance(w, qn.SigmoidQuantizer) and i is None and isinstance(a, nn.ReLU)
    w, i, a = qn.comparison_layer(1, 2)
    assert w.levels.tolist() == [-1.0, 1.0]
    assert isinstance(a[0], nn.ReLU) and a[1].levels.tolist() == [0.0, 1.0, 2.0, 3.0]  # ReLU, then the quantizer
    with pytest.raises(ValueError, match="w_bits"):
        qn.comparison_layer(4, 32)
    with pytest.raises(ValueError, match="a_bits"):
        qn.comparison_layer(2, 16)


def test_bad_inputs():
    b = torch.tensor([-0.5, 0.5])
    x = torch.zeros(3)
    with pytest.raises(TypeError, match="x"):
        qn.quantization_function(torch.zeros(3, dtype=torch.int64), TERNARY, b, 1.0)
    with pytest.raises(ValueError, match="levels"):
        qn.quantization_function(x, torch.tensor([1.0, 0.0, 2.0]), b, 1.0)
    with pytest.raises(ValueError, match="biases"):
        qn.quantization_function(x, TERNARY, torch.tensor([0.0]), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        qn.quantization_function(x, TERNARY, b, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        qn.quantization_function(x, TERNARY, b, -math.inf)
    with pytest.raises(ValueError, match="x"):
        qn.quantization_function(torch.tensor([float("nan")]), TERNARY, b, 1.0)
    with pytest.raises(ValueError, match="bits"):
        qn.weight_levels(4)
    with pytest.raises(ValueError, match="epoch"):
        qn.temperature_schedule(-1)
    with pytest.raises(ValueError, match="values"):
        qn.cluster_biases(torch.zeros(2), TERNARY)
    with pytest.raises(TypeError, match="model"):
        qn.set_temperature("model", 1.0)
    with pytest.raises(TypeError, match="data"):
        qn.fit_quantization_network(nn.Sequential(qn.SigmoidQuantizer(TERNARY)), "data")
    with pytest.raises(TypeError, match="protocol"):
        qn.protocol_fit(nn.Sequential(), None, 0, "protocol")
