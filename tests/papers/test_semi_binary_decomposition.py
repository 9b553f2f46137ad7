"""Semi-binary decomposition (Hu et al., ECCV 2018): hand-computed values, brute force on tiny matrices,
invariants of the alternating optimisation, storage counts, bad input."""

from __future__ import annotations

import pytest
import torch

from qteach.papers import semi_binary_decomposition as sbd


def test_rank_one_binary_matrix_is_recovered_exactly():
    # W = 3 * [1, -1]^T [1, 1, -1]: hand-computed, d = 3, error 0
    u, v = torch.tensor([[1.0], [-1.0]]), torch.tensor([[1.0], [1.0], [-1.0]])
    w = 3.0 * u @ v.T
    u2, d, v2, errors = sbd.fit(w, 1, iterations=3)
    assert torch.allclose(d, torch.tensor([3.0]))
    assert errors[-1] < 1e-10
    assert torch.allclose(sbd.reconstruct(u2, d, v2), w)


def test_d_step_hand_computed():
    # W = [[3, 1], [1, -1]], u = [1, 1], v = [1, 1]: d = u^T W v / (|u|^2 |v|^2) = 4 / 4 = 1
    w = torch.tensor([[3.0, 1.0], [1.0, -1.0]])
    d, u = sbd.fit_d(w, torch.ones(2, 1), torch.ones(2, 1))
    assert d.tolist() == [1.0] and u.tolist() == [[1.0], [1.0]]
    # a negative coefficient is made positive by flipping u: u = [-1, 1], v = [1, 1] gives
    # b = -3 - 1 + 1 - 1 = -4, d = -1, so u becomes [1, -1] and d = 1
    d, u = sbd.fit_d(w, torch.tensor([[-1.0], [1.0]]), torch.ones(2, 1))
    assert d.tolist() == [1.0] and u.tolist() == [[1.0], [-1.0]]
    # error of the first: |W - 1 * ones|^2 = 4 + 0 + 0 + 4 = 8
    assert sbd.decomposition_error(w, torch.ones(2, 1), torch.tensor([1.0]), torch.ones(2, 1)).item() == 8.0


def test_d_step_matches_lstsq_on_the_vectorised_problem():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 4, generator=g, dtype=torch.float64)
    u = torch.where(torch.rand(5, 3, generator=g) < 0.5, -1.0, 1.0).double()
    v = torch.where(torch.rand(4, 3, generator=g) < 0.5, -1.0, 1.0).double()
    d, u2 = sbd.fit_d(w, u, v)
    design = torch.stack([torch.outer(u[:, j], v[:, j]).flatten() for j in range(3)], 1)
    ref = torch.linalg.lstsq(design, w.flatten().unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(d, ref.abs(), atol=1e-9)
    assert (d >= 0).all()
    assert torch.allclose(sbd.reconstruct(u2, d, v), (design @ ref).reshape(5, 4), atol=1e-9)


def test_u_step_bit_is_the_exact_coordinate_minimiser():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 5, generator=g, dtype=torch.float64)
    u, v = sbd.init_from_svd(w, 3)
    d, u = sbd.fit_d(w, u, v)
    new = sbd.update_u(w, d, v, u)
    # after a sweep the last column is optimal given the others: flipping any bit of it cannot help
    for i in range(4):
        flipped = new.clone()
        flipped[i, 2] *= -1
        assert sbd.decomposition_error(w, new, d, v) <= sbd.decomposition_error(w, flipped, d, v) + 1e-12


@pytest.mark.parametrize("seed,shape,k", [(0, (3, 2), 1), (1, (3, 2), 2), (2, (2, 3), 2), (3, (4, 4), 1),
                                          (4, (2, 2), 2)])
def test_alternating_fit_against_brute_force(seed, shape, k):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    best, *_ = sbd.brute_force(w, k)
    _, _, _, errors = sbd.fit(w, k, iterations=10)
    assert errors[-1] >= best - 1e-9                     # never below the global minimum
    assert errors[-1] <= errors[0] + 1e-9                # and never worse than its start


def test_brute_force_optimum_reached_on_most_tiny_matrices():
    hits = 0
    for seed in range(10):
        w = torch.randn(3, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        hits += abs(sbd.fit(w, 2, iterations=10)[3][-1] - sbd.brute_force(w, 2)[0]) < 1e-9
    assert hits >= 6


def test_errors_never_increase_and_beat_bwn_at_full_rank():
    from qteach.papers import xnor_net
    w = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    u, d, v, errors = sbd.fit(w, 16, iterations=10)
    assert all(b <= a + 1e-3 for a, b in zip(errors, errors[1:]))
    assert ((u == 1) | (u == -1)).all() and ((v == 1) | (v == -1)).all() and (d >= 0).all()
    alpha, b = xnor_net.binary_weight_approximation(w)
    assert errors[-1] < ((w - alpha * b) ** 2).sum().item()


def test_storage():
    assert sbd.storage_bits(128, 64, 10) == 192 * 10 + 320
    assert sbd.storage_bits(4, 3, 2, scale_bits=8) == 14 + 16
    assert sbd.bwn_storage_bits(128, 64) == 8192 + 4096


def test_bad_input():
    w = torch.randn(3, 2)
    with pytest.raises(TypeError, match="w"):
        sbd.fit(w.long(), 1)
    with pytest.raises(ValueError, match="w"):
        sbd.fit(torch.randn(3), 1)
    with pytest.raises(ValueError, match="k"):
        sbd.fit(w, 3)
    with pytest.raises(ValueError, match="u"):
        sbd.fit_d(w, torch.zeros(3, 1), torch.ones(2, 1))
    with pytest.raises(ValueError, match="v"):
        sbd.fit_d(w, torch.ones(3, 1), torch.ones(2, 2))
    with pytest.raises(ValueError, match="brute_force"):
        sbd.brute_force(torch.randn(5, 5), 2)
    with pytest.raises(ValueError, match="m"):
        sbd.storage_bits(0, 2, 1)
