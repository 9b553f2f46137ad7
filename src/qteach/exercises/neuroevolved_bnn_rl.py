"""Self-checks of the BiSUNA chapter (notebooks/2019/neuroevolved_bnn_rl.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.neuroevolved_bnn_rl` or a closed
form, and either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import neuroevolved_bnn_rl as ne

_SLUG = "neuroevolved_bnn_rl"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: two genomes, one policy ---------------------------------------------------------------------


def _genomes():
    g = torch.Generator().manual_seed(5)
    yield from (torch.rand(40, generator=g) < 0.5 for _ in range(4))


@self_check
def check_1(equivalent_genome) -> str:
    """Check ``equivalent_genome(genome)`` -> another 40-bit genome (hidden = 8) with the same policy."""
    label = _label(1)
    expect(callable(equivalent_genome), label, "pass your function itself, e.g. check_1(equivalent_genome)")
    g = torch.Generator().manual_seed(6)
    states = torch.randn(1, 400, 4, generator=g, dtype=torch.float64) * 0.5
    for genome in _genomes():
        other = equivalent_genome(genome.clone())
        expect_type(other, torch.Tensor, label, "the returned genome")
        expect(other.dtype == torch.bool and other.shape == genome.shape, label,
               "return a bool tensor of 40 bits, like the input genome")
        expect(not torch.equal(other, genome), label, "return a *different* genome: the same bits are trivially "
                                                      "the same policy")
        same = torch.equal(ne.policy_forces(other, states, 8), ne.policy_forces(genome, states, 8))
        if same:
            continue
        w_in, w_out = (genome ^ other)[:32].reshape(8, 4), (genome ^ other)[32:]
        if w_in.any() and not w_out.any():
            fail(label, "negating a hidden unit's 4 input weights negates its output h_j; negate its output "
                        "weight (bit 32 + j) too, so that w2_j h_j is unchanged.")
        if w_out.any() and not w_in.any():
            fail(label, "flipping only output weights changes the vote; flip the unit's 4 input bits as well.")
        fail(label, "the policies differ: for each hidden unit j you flip, flip all of its input bits "
                    "(4j .. 4j+3) and its output bit (32 + j), nothing else.")
    return passed(label, "negating a hidden unit's inputs and its output weight leaves the policy unchanged, "
                         "so every policy has many genomes")


# --- exercise 2: how many children are clones ----------------------------------------------------------------


@self_check
def check_2(clone_probability) -> str:
    """Check ``clone_probability(n_bits, flip_prob)``: chance that bit-flip mutation changes no bit."""
    label = _label(2)
    expect(callable(clone_probability), label, "pass your function itself, e.g. check_2(clone_probability)")
    cases = [(40, 0.05), (40, 0.01), (10, 0.5), (100, 0.02), (1, 0.3)]
    for n, p in cases:
        got = as_number(clone_probability(n, p), label, f"clone_probability({n}, {p})")
        want = (1 - p) ** n
        if abs(got - want) <= 1e-6 + 1e-4 * want:
            continue
        if abs(got - (1 - want)) <= 1e-6:
            fail(label, "that is the chance that at least one bit flips; a clone is a child with no flip.")
        if abs(got - p ** n) <= 1e-9:
            fail(label, "p^n is the chance that *every* bit flips; a clone needs every bit to stay, (1 - p) each.")
        if abs(got - (1 - n * p)) <= 1e-6:
            fail(label, "1 - n p is only the first-order approximation (and can be negative); the bits flip "
                        "independently, so multiply the n probabilities of staying.")
        fail(label, f"clone_probability({n}, {p}) should be {want:.4g}: each bit stays with probability 1 - p, "
                    "independently.")
    return passed(label, "(1 - p)^n: with 40 bits and p = 0.05 about 13 % of the children are clones, "
                         "wasted evaluations")
