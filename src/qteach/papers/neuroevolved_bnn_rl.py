r"""BiSUNA: binary neural networks trained with no gradient at all, by evolution, on cart-pole.

Valencia, Sham and Sinnen (APCCAS 2019) train binary networks "from scratch ... using neuroevolution as its base
technique (gradient descent free)" and apply them to reinforcement-learning environments of the OpenAI Gym. Their
method, BiSUNA, is the binary version of SUNA (Spectrum-diverse Unified Neuron Evolution Architecture): a
population of networks whose weights *and topology* are mutated, with spectrum-diversity niching. Of the four
things a binary-network paper can change (the gradient through sign, the scaling factors, the architecture, the
optimiser), BiSUNA changes the **optimiser**: there is no gradient, so there is no straight-through estimator and
no latent real-valued weight.

This module keeps what a chapter can run in seconds:

1. **The environment**, coded here (no gym): the cart-pole of Barto, Sutton and Anderson (1983) with friction
   set to zero, exactly as the official ``src/environments/Single_Cart_Pole.cpp`` (lines 37-79, "taken directly
   from the pole simulator written by Richard Sutton and Charles Anderson") integrates it
   (:func:`cartpole_step`).
2. **A binary policy**: a 4-H-1 network with :math:`\pm 1` weights and sign activations; its genome is the bit
   string of its weights (:func:`decode`, :func:`policy_forces`).
3. **Evolution by bit flips**: a :math:`(\mu + \lambda)` genetic algorithm (:func:`mutate_bits`,
   :func:`evolve`). With flip probability 1/2 a child is a uniformly random genome, so the same loop with
   ``flip_prob=0.5`` is random search with the same evaluation budget: the honest baseline.

Simplifications (ours, stated in the chapter): a fixed layered topology instead of SUNA's evolving graph of
neuron types, bit-flip mutation instead of BiSUNA's binary weight mutation (``Module.cpp`` lines 189-192: a random
16-bit word OR-ed into the weight), no niching, one output sign instead of the official two outputs compared
(``Single_Cart_Pole.cpp`` lines 98-105), and fitness averaged over a few fixed start states.

What could not be verified: the paper's result tables (we read its abstract and introduction, and the official
code at commit 0475db3).

References:

- R. Valencia, C.-W. Sham, O. Sinnen, *Using Neuroevolved Binary Neural Networks to solve reinforcement learning
  environments*, IEEE APCCAS 2019, pp. 301-304. Code: https://github.com/rval735/BiSUNA.
- A. G. Barto, R. S. Sutton, C. W. Anderson, *Neuronlike adaptive elements that can solve difficult learning
  control problems*, IEEE Trans. SMC 13(5), 1983 (the cart-pole equations).
"""

from __future__ import annotations

import torch

from qteach._validate import (
    require_float_tensor,
    require_int,
    require_positive_number,
    require_tensor,
)

__all__ = [
    "FORCE_MAG",
    "GRAVITY",
    "HALF_LENGTH",
    "MASS_CART",
    "MASS_POLE",
    "OBS_SCALE",
    "TAU",
    "THETA_LIMIT",
    "X_LIMIT",
    "balance_steps",
    "cartpole_step",
    "decode",
    "evolve",
    "genome_bits",
    "mutate_bits",
    "policy_forces",
    "trajectory",
]

# The constants of the official simulator, Single_Cart_Pole.cpp lines 41-47 and 90, FORCE_MAG in
# Single_Cart_Pole.h line 13. (Barto, Sutton and Anderson, and Gym's CartPole, use g = 9.8.)
GRAVITY = 9.81          # m/s^2
MASS_CART = 1.0         # kg
MASS_POLE = 0.1         # kg
HALF_LENGTH = 0.5       # m, half the pole's length
TAU = 0.02              # s between state updates (Euler step)
FORCE_MAG = 10.0        # N
X_LIMIT = 2.4           # m, the cart leaves the track beyond it (line 134)
THETA_LIMIT = 0.2094384  # rad, twelve degrees (line 90)
# Half-ranges of the normalisation left commented out in the official step (lines 112-118): x / 2.4,
# x_dot / 0.75, theta / 0.205, theta_dot / 1.0. The policy reads the state divided by these.
OBS_SCALE = (2.4, 0.75, 0.205, 1.0)


def genome_bits(hidden: int) -> int:
    r"""Number of bits of a 4-``hidden``-1 binary policy: :math:`4H + H = 5H` weights of one bit each."""
    return 5 * require_int(hidden, "hidden", minimum=1)


def cartpole_step(state: torch.Tensor, force, gravity: float = GRAVITY) -> torch.Tensor:
    r"""One Euler step of the frictionless cart-pole (Barto, Sutton and Anderson 1983; ``Single_Cart_Pole.cpp``
    lines 61-78). ``state`` (..., 4) holds :math:`(x, \dot{x}, \theta, \dot{\theta})`; ``force`` is a number or
    a tensor broadcast to ``state[..., 0]``, clipped to :math:`\pm` ``FORCE_MAG`` (lines 52-59).

    .. math::
        t = \frac{F + m_p l \dot{\theta}^2 \sin\theta}{m_c + m_p}, \quad
        \ddot{\theta} = \frac{g \sin\theta - t\cos\theta}{l\left(\frac{4}{3}
            - \frac{m_p \cos^2\theta}{m_c + m_p}\right)}, \quad
        \ddot{x} = t - \frac{m_p l \ddot{\theta}\cos\theta}{m_c + m_p}

    then :math:`x \mathrel{+}= \tau\dot{x}`, :math:`\dot{x} \mathrel{+}= \tau\ddot{x}`, :math:`\theta
    \mathrel{+}= \tau\dot{\theta}`, :math:`\dot{\theta} \mathrel{+}= \tau\ddot{\theta}` (old velocities in the
    position updates). Returns the new state; the input is not modified.
    """
    require_float_tensor(state, "state")
    if state.dim() == 0 or state.shape[-1] != 4:
        raise ValueError(f"state must have 4 entries in its last dimension, got shape {tuple(state.shape)}")
    if not isinstance(force, (int, float, torch.Tensor)) or isinstance(force, bool):
        raise TypeError(f"force must be a number or a tensor, got {type(force).__name__}")
    gravity = require_positive_number(gravity, "gravity")
    force = torch.as_tensor(force, dtype=state.dtype).clamp(-FORCE_MAG, FORCE_MAG)
    return _step(state, force, gravity)


def _step(state: torch.Tensor, force: torch.Tensor, gravity: float = GRAVITY) -> torch.Tensor:
    x, x_dot, theta, theta_dot = state.unbind(-1)
    total, pole_ml = MASS_CART + MASS_POLE, MASS_POLE * HALF_LENGTH
    cos, sin = torch.cos(theta), torch.sin(theta)
    temp = (force + pole_ml * theta_dot * theta_dot * sin) / total
    theta_acc = (gravity * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / total))
    x_acc = temp - pole_ml * theta_acc * cos / total
    return torch.stack([x + TAU * x_dot, x_dot + TAU * x_acc,
                        theta + TAU * theta_dot, theta_dot + TAU * theta_acc], dim=-1)


def _require_genomes(genomes, hidden):
    require_tensor(genomes, "genomes")
    if genomes.dtype != torch.bool and not genomes.is_floating_point():
        raise TypeError(f"genomes must be bool (binary weights) or floating point (real weights), got "
                        f"{genomes.dtype}")
    if genomes.dim() not in (1, 2) or genomes.shape[-1] != genome_bits(hidden):
        raise ValueError(f"genomes must be (P, {genome_bits(hidden)}) or ({genome_bits(hidden)},) for "
                         f"hidden={hidden}, got shape {tuple(genomes.shape)}")


def decode(genomes: torch.Tensor, hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Weights of the policies: bit 1 :math:`\to +1`, bit 0 :math:`\to -1` (a float genome is used as it is).
    ``genomes`` (P, 5H) or (5H,). Returns :math:`W_1` (P, H, 4) and :math:`w_2` (P, H), float64."""
    _require_genomes(genomes, hidden)
    g = genomes.reshape(-1, genome_bits(hidden))
    w = torch.where(g, 1.0, -1.0).double() if g.dtype == torch.bool else g.double()
    return w[:, : 4 * hidden].reshape(-1, hidden, 4), w[:, 4 * hidden:]


def policy_forces(genomes: torch.Tensor, state: torch.Tensor, hidden: int) -> torch.Tensor:
    r"""The force each policy applies: :math:`h = \operatorname{sign}(W_1 s)`, :math:`o = w_2^\top h`,
    :math:`F = +F_{\max}` if :math:`o \ge 0` else :math:`-F_{\max}`, with :math:`s` the state divided by
    ``OBS_SCALE`` and :math:`\operatorname{sign}(0) = +1`. With binary weights the first layer only adds and
    subtracts inputs and :math:`o` is an XNOR-popcount of two :math:`\pm 1` vectors. ``state`` (P, S, 4): S
    states per policy. Returns (P, S)."""
    _require_genomes(genomes, hidden)
    require_float_tensor(state, "state")
    if state.dim() != 3 or state.shape[-1] != 4:
        raise ValueError(f"state must be (P, S, 4), got shape {tuple(state.shape)}")
    return _forces(*decode(genomes, hidden), state.double())


def _forces(w1: torch.Tensor, w2: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    s = state / torch.tensor(OBS_SCALE, dtype=torch.float64)
    h = torch.where(torch.bmm(s, w1.transpose(1, 2)) >= 0, 1.0, -1.0).double()  # binary.sign, no checks
    out = torch.bmm(h, w2.unsqueeze(-1)).squeeze(-1)
    return torch.where(out >= 0, FORCE_MAG, -FORCE_MAG)


def balance_steps(genomes: torch.Tensor, starts: torch.Tensor, hidden: int, max_steps: int = 500) -> torch.Tensor:
    r"""Steps each policy keeps the pole up from each start state (at most ``max_steps``): the episode ends when
    :math:`|x| > 2.4` or :math:`|\theta| > 12°` (``Single_Cart_Pole.cpp`` line 134). ``genomes`` (P, 5H),
    ``starts`` (S, 4). Returns int64 (P, S). All P x S episodes run side by side."""
    _require_genomes(genomes, hidden)
    require_float_tensor(starts, "starts")
    if starts.dim() != 2 or starts.shape[1] != 4:
        raise ValueError(f"starts must be (S, 4), got shape {tuple(starts.shape)}")
    max_steps = require_int(max_steps, "max_steps", minimum=1)
    g = genomes.reshape(-1, genome_bits(hidden))
    state = starts.double().expand(len(g), -1, -1).clone()
    w1, w2 = decode(g, hidden)
    alive = torch.ones(state.shape[:2], dtype=torch.bool)
    steps = torch.zeros(state.shape[:2], dtype=torch.int64)
    for _ in range(max_steps):
        state = _step(state, _forces(w1, w2, state))
        alive &= (state[..., 0].abs() <= X_LIMIT) & (state[..., 2].abs() <= THETA_LIMIT)
        steps += alive
        if not alive.any():
            break
    return steps


def mutate_bits(parents: torch.Tensor, flip_prob: float, generator: torch.Generator) -> torch.Tensor:
    r"""Flip every bit of every parent independently with probability :math:`p` = ``flip_prob``:
    :math:`g' = g \oplus m`, :math:`m_i \sim \text{Bernoulli}(p)`. With :math:`p = 1/2` the child is a uniformly
    random genome (random search). A float genome gets :math:`g' = g + p\,\varepsilon`,
    :math:`\varepsilon \sim \mathcal{N}(0, 1)` (the real-weight baseline)."""
    require_tensor(parents, "parents")
    flip_prob = require_positive_number(flip_prob, "flip_prob", maximum=0.5 if parents.dtype == torch.bool
                                        else None)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if parents.dtype == torch.bool:
        return parents ^ (torch.rand(parents.shape, generator=generator) < flip_prob)
    require_float_tensor(parents, "parents")
    return parents + flip_prob * torch.randn(parents.shape, generator=generator, dtype=parents.dtype)


def evolve(starts: torch.Tensor, hidden: int = 8, population: int = 24, parents: int = 6, generations: int = 15,
           flip_prob: float = 0.05, max_steps: int = 500, seed: int = 0, real: bool = False) -> dict:
    r"""A :math:`(\mu + \lambda)` genetic algorithm: keep the ``parents`` (:math:`\mu`) fittest genomes, fill the
    population with :math:`\lambda = P - \mu` mutated copies of parents drawn uniformly, repeat. Fitness: mean
    :func:`balance_steps` over ``starts``. ``real=True`` evolves real-valued weights with Gaussian mutations of
    size ``flip_prob`` instead of bits. Deterministic for a seed. Stops once a genome balances from every start
    for ``max_steps``. Returns ``best`` (fitness of the best genome after each generation, generation 0 = the
    random initial population, repeated after a stop), ``genomes`` (the best genome after each generation),
    ``evaluations`` (genomes evaluated so far, per generation actually run) and ``solved``."""
    require_float_tensor(starts, "starts")
    hidden = require_int(hidden, "hidden", minimum=1)
    population = require_int(population, "population", minimum=2)
    parents = require_int(parents, "parents", minimum=1, maximum=population - 1)
    generations = require_int(generations, "generations", minimum=0)
    g = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    size = (population, genome_bits(hidden))
    pop = torch.randn(size, generator=g, dtype=torch.float64) if real else torch.rand(size, generator=g) < 0.5
    fitness = balance_steps(pop, starts, hidden, max_steps).double().mean(1)
    best, genomes, evaluations = [], [], [population]
    for generation in range(generations + 1):
        order = torch.sort(fitness, descending=True, stable=True).indices[:parents]
        pop, fitness = pop[order], fitness[order]
        best.append(fitness[0].item())
        genomes.append(pop[0].clone())
        if generation == generations or fitness[0].item() >= max_steps:
            break
        picks = torch.randint(0, parents, (population - parents,), generator=g)
        children = mutate_bits(pop[picks], flip_prob, g)
        pop = torch.cat([pop, children])
        fitness = torch.cat([fitness, balance_steps(children, starts, hidden, max_steps).double().mean(1)])
        evaluations.append(evaluations[-1] + len(children))
    solved = best[-1] >= max_steps
    pad = generations + 1 - len(best)  # stopped early: every start balanced for max_steps
    return {"best": best + best[-1:] * pad, "genomes": genomes + genomes[-1:] * pad,
            "evaluations": evaluations, "solved": solved}


def trajectory(genome: torch.Tensor, start: torch.Tensor, hidden: int, steps: int = 500) -> torch.Tensor:
    r"""The states :math:`(x, \dot{x}, \theta, \dot{\theta})` visited by one policy from one start, until the
    pole falls or ``steps`` steps. Returns (T + 1, 4), the start included."""
    _require_genomes(genome, hidden)
    require_float_tensor(start, "start")
    if start.shape != (4,):
        raise ValueError(f"start must be a (4,) state, got shape {tuple(start.shape)}")
    steps = require_int(steps, "steps", minimum=1)
    states, (w1, w2) = [start.double()], decode(genome.reshape(1, -1), hidden)
    for _ in range(steps):
        s = states[-1].reshape(1, 1, 4)
        states.append(_step(s, _forces(w1, w2, s))[0, 0])
        if states[-1][0].abs() > X_LIMIT or states[-1][2].abs() > THETA_LIMIT:
            break
    return torch.stack(states)
