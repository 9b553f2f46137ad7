"""RBNN (Lin et al., NeurIPS 2020): the bi-rotation, its alternating optimisation, the adjustable rotated weight
and the training-aware sign, against hand-computed values and a line-by-line transcription of the official code
(https://github.com/lmbxmu/RBNN, cifar/modules/binarized_modules.py and cifar/main.py)."""

import itertools
import math

import pytest
import torch

from qteach import comparison
from qteach.papers import rotated_bnn as rb

# --- transcriptions of the official code (torch.svd returns V, torch.linalg.svd V^H) ------------------------


def official_get_ab(n):  # binarized_modules.py lines 103-108
    sqrt = int(math.sqrt(n))
    for i in range(sqrt, 0, -1):
        if n % i == 0:
            return i, n // i


def official_update(x, r1, r2):  # binarized_modules.py lines 41-52 (X detached, torch.sign)
    for _ in range(3):
        v = r1.t() @ x @ r2
        b = torch.sign(v)
        d1 = sum([bi @ (r2.t()) @ (xi.t()) for (bi, xi) in zip(b, x)])
        u1, _s1, v1 = torch.svd(d1)
        r1 = v1 @ (u1.t())
        d2 = sum([(xi.t()) @ r1 @ bi for (xi, bi) in zip(x, b)])
        u2, _s2, v2 = torch.svd(d2)
        r2 = u2 @ (v2.t())
    return r1, r2


def official_backward(x, k, t):  # binarized_modules.py lines 80-82, grad_output = 1
    g = k * (2 * torch.sqrt(t ** 2 / 2) - torch.abs(t ** 2 * x))
    return g.clamp(min=0)


def official_cpt_tk(epoch, epochs, t_min=1e-2, t_max=1e1):  # main.py lines 166-172
    lo, hi = torch.log10(torch.tensor(t_min).float()), torch.log10(torch.tensor(t_max).float())
    t = torch.pow(torch.tensor(10.0), lo + (hi - lo) / epochs * epoch)
    return t.item(), max(1 / t, torch.tensor(1.0)).item()


def official_weight(w, r1, r2, rotate, k, t):  # lines 33-58 (after the rotation update), forward and backward
    w1 = w - w.mean([1], keepdim=True)
    w2 = w1 / w1.std([1], keepdim=True)
    a, b = r1.shape[0], r2.shape[0]
    x = w2.view(w.shape[0], a, b)
    rweight = ((r1.t()) @ x @ r2).view_as(w)
    delta = rweight.detach() - w2
    return w2 + torch.abs(torch.sin(rotate)) * delta


# --- split and counts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 9, 12, 128, 144, 288, 576, 4608, 127, 1000])
def test_split_dims_matches_official_get_ab(n):
    assert rb.split_dims(n) == official_get_ab(n)


def test_rotation_parameters_hand_values():
    p = rb.rotation_parameters(128)  # 8 x 16
    assert (p["n1"], p["n2"], p["full_entries"], p["bi_entries"]) == (8, 16, 16384, 64 + 256)
    assert p["bi_macs"] == 8 * 16 * 24 and p["full_macs"] == 16384
    prime = rb.rotation_parameters(127)  # no saving: 1 x 127
    assert prime["bi_entries"] == 1 + 127 ** 2 > prime["full_entries"]
    assert rb.rotation_parameters(576)["bi_entries"] == 2 * 24 ** 2


# --- angle and eq. (1) -------------------------------------------------------------------------------------------


def test_angular_bias_hand_values():
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, -4.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    # cos = ||w||_1 / (sqrt(n) ||w||_2): 1, 7 / (2 * 5), 2 / (2 * 2)
    expected = torch.tensor([0.0, math.acos(0.7), math.acos(0.5)])
    assert torch.allclose(rb.angular_bias(w), expected, atol=1e-6)
    assert torch.allclose(rb.angular_bias(torch.tensor([1.0, -1.0])), torch.zeros(1))


def test_quantization_error_is_the_least_squares_residual():
    w = torch.randn(5, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    lam = (w * b).sum(1, keepdim=True) / 40  # optimum of eq. (1)
    direct = (lam * b - w).pow(2).sum(1)
    assert torch.allclose(rb.quantization_error(w), direct, rtol=1e-10)
    grid = torch.linspace(0.0, 2.0, 201, dtype=w.dtype)[:, None, None] * lam  # no lambda does better
    assert ((grid * b - w).pow(2).sum(2) >= direct - 1e-12).all()


# --- rotation -----------------------------------------------------------------------------------------------------


def test_bi_rotation_is_the_kronecker_rotation_of_the_vector():
    g = torch.Generator().manual_seed(1)
    r1, r2 = rb.random_rotation(3, g).double(), rb.random_rotation(4, g).double()
    x = torch.randn(6, 3, 4, generator=g, dtype=torch.float64)
    full = torch.kron(r1, r2)
    assert torch.allclose(full.t() @ full, torch.eye(12, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(rb.bi_rotate(x, r1, r2).reshape(6, 12), x.reshape(6, 12) @ full, atol=1e-12)
    # a rotation keeps the norm
    assert torch.allclose(rb.bi_rotate(x, r1, r2).flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))


def test_random_rotation_is_orthogonal_and_seeded():
    r = rb.random_rotation(7, torch.Generator().manual_seed(3))
    assert torch.allclose(r @ r.t(), torch.eye(7), atol=1e-5)
    assert torch.equal(r, rb.random_rotation(7, torch.Generator().manual_seed(3)))


def test_update_rotation_matches_official_code():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 8, 16, generator=g, dtype=torch.float64)
    r1, r2 = rb.random_rotation(8, g).double(), rb.random_rotation(16, g).double()
    ours, theirs = rb.update_rotation(x, r1, r2), official_update(x, r1, r2)
    assert torch.allclose(ours[0], theirs[0], atol=1e-9) and torch.allclose(ours[1], theirs[1], atol=1e-9)


def test_alternating_optimisation_never_decreases_the_l1_norm_and_shrinks_the_angle():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(32, 8, 16, generator=g, dtype=torch.float64)
    r1, r2 = rb.random_rotation(8, g).double(), rb.random_rotation(16, g).double()
    norms = []
    for _ in range(6):
        norms.append(rb.bi_rotate(x, r1, r2).abs().sum().item())
        r1, r2 = rb.update_rotation(x, r1, r2, iterations=1)
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(norms))
    before = rb.angular_bias(x.reshape(32, -1)).mean()
    after = rb.angular_bias(rb.bi_rotate(x, r1, r2).reshape(32, -1)).mean()
    assert after < before
    # orthogonality is kept
    assert torch.allclose(r1 @ r1.t(), torch.eye(8, dtype=torch.float64), atol=1e-10)
    assert torch.equal(rb.update_rotation(x, r1, r2, iterations=0)[0], r1)


# --- training-aware sign ------------------------------------------------------------------------------------------


def test_training_aware_derivative_matches_official_backward_and_hand_values():
    x = torch.linspace(-3, 3, 61)
    for k, t in ((100.0, 0.01), (1.0, 1.0), (1.0, 10.0), (2.0, 0.5)):
        expected = official_backward(x, torch.tensor(k), torch.tensor(t))
        assert torch.allclose(rb.training_aware_derivative(x, k, t), expected, atol=1e-5)
    d = rb.training_aware_derivative(torch.tensor([0.0, 0.1, 0.2]), 1.0, 10.0)  # sqrt(2) * 10 - 100 |x|
    assert torch.allclose(d, torch.tensor([10 * math.sqrt(2), 10 * math.sqrt(2) - 10, 0.0]), atol=1e-5)


@pytest.mark.parametrize("epoch", [0, 1, 5, 9, 10])
def test_schedule_matches_official_cpt_tk(epoch):
    t, k = rb.schedule_tk(epoch, 10)
    t_ref, k_ref = official_cpt_tk(epoch, 10)
    assert t == pytest.approx(t_ref, rel=1e-5) and k == pytest.approx(k_ref, rel=1e-5)
    assert rb.schedule_tk(0, 10) == pytest.approx((0.01, 100.0))


# --- the layer ----------------------------------------------------------------------------------------------------


def test_rotated_sign_weight_matches_official_forward_and_backward():
    torch.manual_seed(0)
    q = rb.RotatedSignWeight(6, 12)
    w = torch.randn(6, 12, requires_grad=True)
    rb.set_schedule(torch.nn.Sequential(q), 3, 10, update_rotation_now=False)
    with torch.no_grad():
        q.phi.copy_(torch.linspace(0.3, 2.0, 6)[:, None])
    out = q(w)
    assert torch.allclose(q.alpha.detach(), w.detach().abs().mean(1, keepdim=True))  # initialised on first use
    w3 = official_weight(w, q.r1, q.r2, q.phi, q.k, q.t)
    assert torch.equal(out.detach(), q.alpha.detach() * torch.sign(w3.detach()))
    upstream = torch.randn(6, 12, generator=torch.Generator().manual_seed(1))
    (out * upstream).sum().backward()
    ours = w.grad.clone()
    w.grad = None
    w3 = official_weight(w, q.r1, q.r2, q.phi.detach(), q.k, q.t)
    g = official_backward(w3.detach(), q.k, q.t) * upstream * q.alpha.detach()
    w3.backward(g)
    assert torch.allclose(ours, w.grad, atol=1e-5)


def test_weight_gradient_vanishes_at_the_official_initial_phi():
    torch.manual_seed(0)
    q = rb.RotatedSignWeight(4, 8)
    w = torch.randn(4, 8, requires_grad=True)
    q(w).sum().backward()
    # phi = pi/2: |sin phi| = 1 in float32, so w' = rotated w (no gradient): w's gradient is exactly zero
    assert torch.equal(w.grad, torch.zeros_like(w))


def test_pending_update_runs_once_and_changes_the_rotation():
    torch.manual_seed(0)
    model = torch.nn.Sequential(rb.RotatedSignWeight(8, 16))
    q = model[0]
    r1 = q.r1.clone()
    rb.set_schedule(model, 0, 10)
    assert q.pending_update
    w = torch.randn(8, 16)
    x = rb._standardize(w).reshape(8, q.n1, q.n2)
    before = rb.angular_bias(rb.bi_rotate(x, r1, q.r2).reshape(8, -1)).mean()
    q(w)
    assert not q.pending_update and not torch.equal(q.r1, r1)
    assert rb.angular_bias(rb.bi_rotate(x, q.r1, q.r2).reshape(8, -1)).mean() < before


def test_rotated_sign_input_standardizes_each_example():
    q = rb.RotatedSignInput()
    x = torch.tensor([[5.0, 6.0, 7.0, 8.0]], requires_grad=True)
    assert q(x).tolist() == [[-1.0, -1.0, 1.0, 1.0]]  # above/below the example's mean, not zero


def test_comparison_layer_and_protocol_fit_train():
    w, i, act = rb.comparison_layer(1, 1)
    assert w.precision == 1 and i.precision == 1 and isinstance(act, torch.nn.Identity)
    method = comparison.Method("RBNN", "rotated_bnn", ((1, 1),), layer=rb.comparison_layer, fit=rb.protocol_fit,
                               changes="scaling")
    small = comparison.Protocol("tiny", "tiny", "", comparison.DIGITS.load, epochs=2, lr=3e-3, batch_size=256)
    result = comparison.run([method], seeds=(0,), protocol=small)[0]
    assert result.accuracies[0] > 0.3


# --- bad input ----------------------------------------------------------------------------------------------------


def test_bad_input_raises():
    with pytest.raises(ValueError, match="n"):
        rb.split_dims(0)
    with pytest.raises(TypeError, match="w"):
        rb.angular_bias([1.0, 2.0])
    with pytest.raises(ValueError, match="w"):
        rb.angular_bias(torch.zeros(2, 3))
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="r1"):
        rb.bi_rotate(x, torch.eye(4), torch.eye(4))
    with pytest.raises(ValueError, match="r2"):
        rb.update_rotation(x, torch.eye(3), torch.eye(3))
    with pytest.raises(ValueError, match="x"):
        rb.bi_rotate(torch.randn(3, 4), torch.eye(3), torch.eye(4))
    with pytest.raises(ValueError, match="iterations"):
        rb.update_rotation(x, torch.eye(3), torch.eye(4), iterations=-1)
    with pytest.raises(ValueError, match="t"):
        rb.training_aware_derivative(torch.zeros(2), 1.0, 0.0)
    with pytest.raises(ValueError, match="epoch"):
        rb.schedule_tk(11, 10)
    with pytest.raises(ValueError, match="w"):
        rb.RotatedSignWeight(4, 8)(torch.randn(4, 9))
    with pytest.raises(ValueError, match="in_features"):
        rb.RotatedSignWeight(4, 1)
    with pytest.raises(ValueError):
        rb.comparison_layer(2, 2)
    with pytest.raises(TypeError, match="model"):
        rb.set_schedule("model", 0, 10)
