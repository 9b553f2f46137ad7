r"""Simple dynamic binary neural networks (DBNN): binary state, ternary connections, periodic orbits.

"Analysis and Implementation of Simple Dynamic Binary Neural Networks" (IJCNN 2018, IEEE Xplore document 8489259)
belongs to a research line of T. Saito's group at Hosei University. Its full text, and its author list, could not be
read here; what follows is the model as the group's abstracts describe it (Sato & Saito, *Stabilization of desired
periodic orbits in dynamic binary neural networks*, Neurocomputing 2017; *Stability of periodic orbits and fault
tolerance in dynamic binary neural networks*; *Guaranteed storage and stabilization of desired binary periodic
orbits in three-layer dynamic binary neural networks*): a two-layer network of signum neurons whose output is fed
back to its input after one time step, with **ternary connection parameters** and **integer thresholds**,

.. math:: x_i^{t+1} = \operatorname{sgn}\Big(\sum_{j=1}^{N} w_{ij} x_j^t - T_i\Big), \quad
    x^t \in \{-1, +1\}^N,\ w_{ij} \in \{-1, 0, +1\},\ T_i \in \mathbb{Z},

with :math:`\operatorname{sgn}(0) = +1` (our convention, as :func:`qteach.binary.sign`). This is **not weight
quantization of a trained network**: there is no data set, no loss and no float model being compressed. It is a
digital dynamical system; the binary states and ternary weights are its definition, chosen because the network is
then a small circuit of wires (cut, straight or inverted) and threshold gates. Every trajectory of a system with
:math:`2^N` states ends on a **binary periodic orbit** (BPO); the questions of the research line are how to store a
desired BPO, how stable it is (how many initial states fall into it), and what cutting connections (zero insertion,
"wire cutting") does to storage and stability.

What is ours, not the papers': the design rule :func:`ternary_design` (an exhaustive search per neuron), the
baseline :func:`correlation_design`, the stability measures of :func:`stability`, the greedy :func:`sparsify` (the
Neurocomputing paper uses an evolutionary algorithm, SES, whose details we could not read), and the cost rules of
:func:`hardware_cost`.
"""

from __future__ import annotations

import functools
import itertools

import torch

from qteach._validate import require_int, require_integer_tensor, require_tensor
from qteach.binary import sign
from qteach.papers.fp_bnn import popcount_cost

__all__ = [
    "MAX_NEURONS",
    "all_states",
    "correlation_design",
    "cut_each_wire",
    "dbnn_step",
    "hardware_cost",
    "hardware_step",
    "is_stored",
    "periodic_orbits",
    "return_map",
    "sparsify",
    "stability",
    "state_index",
    "ternary_design",
]

#: Largest N for which the state space (2^N states) and the design search (3^N rows) are enumerated.
MAX_NEURONS = 12

#: LUT inputs of the FPGA assumed by :func:`hardware_cost` (a common 6-input LUT; an assumption, not the paper's).
LUT_INPUTS = 6


def _require_network(w, t) -> int:
    """``w`` an (N, N) integer tensor with entries in {-1, 0, 1}, ``t`` an (N,) integer tensor; return N."""
    require_integer_tensor(w, "w")
    require_integer_tensor(t, "t")
    if w.dim() != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise ValueError(f"w must be a square (N, N) matrix with N >= 1, got shape {tuple(w.shape)}")
    if t.shape != (w.shape[0],):
        raise ValueError(f"t must have shape ({w.shape[0]},), one threshold per neuron, got {tuple(t.shape)}")
    if bool((w.abs() > 1).any()):
        raise ValueError("w must be ternary: every entry in {-1, 0, +1}")
    return w.shape[0]


def _require_states(x, name: str, n: int | None = None) -> torch.Tensor:
    """An integer tensor (..., N) of +1/-1 entries (N = ``n`` when given)."""
    require_integer_tensor(x, name)
    if x.dim() == 0 or (n is not None and x.shape[-1] != n):
        raise ValueError(f"{name} must have shape (..., {n or 'N'}), got {tuple(x.shape)}")
    if bool((x.abs() != 1).any()):
        raise ValueError(f"{name} must be binary: every entry +1 or -1")
    return x


def _require_orbit(orbit, n: int | None = None) -> torch.Tensor:
    """A (P, N) tensor of P distinct binary states, P >= 1."""
    _require_states(orbit, "orbit", n)
    if orbit.dim() != 2 or orbit.shape[0] == 0:
        raise ValueError(f"orbit must be (P, N) with P >= 1 states, got shape {tuple(orbit.shape)}")
    if torch.unique(orbit, dim=0).shape[0] != orbit.shape[0]:
        raise ValueError("orbit must hold P distinct states (a periodic orbit visits each point once)")
    return orbit


def _require_size(n: int) -> int:
    return require_int(n, "n", minimum=1, maximum=MAX_NEURONS)


# ----------------------------------------------------------------------------------------------------------------
# Dynamics
# ----------------------------------------------------------------------------------------------------------------

def dbnn_step(x: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""One time step of the DBNN, for one state (N,) or a batch (..., N).

    .. math:: x_i^{t+1} = \operatorname{sgn}\Big(\sum_j w_{ij} x_j^t - T_i\Big), \qquad
        \operatorname{sgn}(0) = +1

    ``x`` holds +1/-1 integers, ``w`` is ternary (N, N), ``t`` integer (N,). The result has the dtype of ``x``.
    """
    n = _require_network(w, t)
    _require_states(x, "x", n)
    return sign(x.to(torch.int64) @ w.to(torch.int64).T - t.to(torch.int64)).to(x.dtype)


def all_states(n: int) -> torch.Tensor:
    r"""The :math:`2^N` binary states as an int64 tensor (2^N, N); state :math:`k` has :math:`x_j = -1` exactly
    where bit :math:`j` of :math:`k` is 1 (the bit order of :func:`qteach.bitops.pack_bits`)."""
    n = _require_size(n)
    bits = (torch.arange(2**n)[:, None] >> torch.arange(n)) & 1
    return 1 - 2 * bits


def state_index(x: torch.Tensor) -> torch.Tensor:
    """The index of each state of ``x`` (..., N) in :func:`all_states` order: sum of 2^j over the -1 entries."""
    _require_states(x, "x")
    if x.shape[-1] > 62:
        raise ValueError(f"x must have at most 62 neurons to index its states, got {x.shape[-1]}")
    return ((x < 0).to(torch.int64) << torch.arange(x.shape[-1])).sum(-1)


def return_map(w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""The digital return map (the group's "Dmap") as a table: ``succ[k]`` is the index of the state that state
    :math:`k` steps to, for all :math:`2^N` states (int64, shape (2^N,))."""
    n = _require_network(w, t)
    _require_size(n)
    return state_index(dbnn_step(all_states(n), w, t))


def periodic_orbits(succ: torch.Tensor) -> tuple[list[list[int]], torch.Tensor, torch.Tensor]:
    r"""Every periodic orbit of a finite map, with the basin and transient of every state.

    A map of a finite set to itself sends every state, after a transient, onto a cycle. Returns ``(orbits,
    orbit_of, transient)``: ``orbits`` is a list of cycles (lists of state indices in the order the map visits
    them, each starting at its smallest index, sorted by that index); ``orbit_of[k]`` is the position in ``orbits``
    of the orbit that state :math:`k` falls into and ``transient[k]`` the number of steps before it gets there
    (0 on the orbit).
    """
    require_integer_tensor(succ, "succ")
    if succ.dim() != 1 or len(succ) == 0 or bool(((succ < 0) | (succ >= len(succ))).any()):
        raise ValueError("succ must be a non-empty 1-D table of indices into itself")
    nxt = succ.tolist()
    orbit_of, transient, cycles = [-1] * len(nxt), [0] * len(nxt), []
    for start in range(len(nxt)):
        path, position, k = [], {}, start
        while orbit_of[k] < 0 and k not in position:      # walk until a known state or a loop
            position[k] = len(path)
            path.append(k)
            k = nxt[k]
        if orbit_of[k] < 0:                               # the walk closed a new cycle at k
            cycle = path[position[k]:]
            for c in cycle:
                orbit_of[c] = len(cycles)
            cycles.append(cycle)
            path = path[:position[k]]
        for depth, s in enumerate(reversed(path), 1):     # the transient states hang on k
            orbit_of[s], transient[s] = orbit_of[k], transient[k] + depth
    rotated = [c[c.index(min(c)):] + c[:c.index(min(c))] for c in cycles]   # start each at its smallest index
    order = sorted(range(len(cycles)), key=lambda i: rotated[i][0])
    rank = {old: new for new, old in enumerate(order)}
    return ([rotated[i] for i in order], torch.tensor([rank[o] for o in orbit_of]),
            torch.tensor(transient))


def is_stored(orbit: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> bool:
    r"""Whether the network steps each point of ``orbit`` (P, N) to the next, and the last to the first:
    :math:`F(z(p)) = z(p + 1 \bmod P)` for every :math:`p`, i.e. the orbit is a periodic orbit of period P."""
    n = _require_network(w, t)
    _require_orbit(orbit, n)
    return bool(torch.equal(dbnn_step(orbit, w, t), torch.roll(orbit, -1, dims=0)))


# ----------------------------------------------------------------------------------------------------------------
# Storing a desired periodic orbit
# ----------------------------------------------------------------------------------------------------------------

def correlation_design(orbit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Baseline: the sign of the sequence correlation (an asymmetric Hebb rule for sequences), zero thresholds.

    .. math:: w_{ij} = \operatorname{sgn}_0\Big(\sum_{p=1}^{P} z_i(p+1)\, z_j(p)\Big), \qquad T_i = 0,

    where :math:`\operatorname{sgn}_0` is ``torch.sign`` (0 stays 0, so :math:`w` is ternary). Not a rule of the
    DBNN papers; a classical associative-memory recipe, used here as the baseline. It may fail to store the orbit.
    """
    _require_orbit(orbit)
    z = orbit.to(torch.int64)
    w = torch.sign(torch.roll(z, -1, dims=0).T @ z)
    return w, torch.zeros(z.shape[1], dtype=torch.int64)


@functools.cache
def _ternary_rows(n: int) -> torch.Tensor:
    """All 3^n ternary rows, in a fixed order; row 0 is the empty row (no connections)."""
    return torch.tensor(list(itertools.product((0, 1, -1), repeat=n)), dtype=torch.int64)


def ternary_design(orbit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    r"""Store ``orbit`` exactly (ours): search all :math:`3^N` ternary rows for each neuron.

    Neuron :math:`i` must map :math:`z(p)` to :math:`z_i(p+1)` for every :math:`p`. For a row :math:`w_i` let
    :math:`u_p = w_i \cdot z(p)`; an integer threshold exists iff :math:`\max_{z_i(p+1) = -1} u_p <
    \min_{z_i(p+1) = +1} u_p`. Among the rows that work we take the widest gap between the two sides (the most
    robust to flipped inputs), then the fewest connections, and put :math:`T_i` in the middle of the gap. A neuron
    that is constant along the orbit gets no connections. Returns ``(w, t)``, or ``None`` when some neuron has no
    ternary row at all, which proves that no DBNN of this form stores the orbit.
    """
    _require_orbit(orbit)
    n = orbit.shape[1]
    require_int(n, "orbit.shape[1]", minimum=1, maximum=MAX_NEURONS)
    z, target = orbit.to(torch.int64), torch.roll(orbit, -1, dims=0).to(torch.int64)
    rows = _ternary_rows(n)
    u = (rows @ z.T)[:, :, None]                            # (3^N, P, 1): every row's input along the orbit
    big = n + 1                                             # beyond any |u|: marks an empty side
    low = torch.where(target < 0, u, -big).amax(1)          # (3^N, N): largest input that must give -1
    high = torch.where(target > 0, u, big).amin(1)          # smallest input that must give +1
    constant = (low[0] == -big) | (high[0] == big)          # (N,): the neuron never changes along the orbit
    gap = torch.where(high > low, high - low, -1)
    if bool(((gap.amax(0) < 0) & ~constant).any()):
        return None
    score = gap * (n + 1) - rows.abs().sum(1, keepdim=True)  # widest gap first, then fewest connections
    best = score.argmax(0)[None]                            # the first best row of each neuron
    middle = (low.gather(0, best) + gap.gather(0, best) // 2)[0]
    w = torch.where(constant[:, None], 0, rows[best[0]])
    t = torch.where(constant, (high[0] == big).to(torch.int64), middle)   # sgn(0 - 1) = -1, sgn(0 - 0) = +1
    return w, t


# ----------------------------------------------------------------------------------------------------------------
# Stability and fault tolerance
# ----------------------------------------------------------------------------------------------------------------

def stability(w: torch.Tensor, t: torch.Tensor, orbit: torch.Tensor) -> dict:
    r"""How stable the stored ``orbit`` is, by enumerating all :math:`2^N` states (measures ours).

    Returns a dict: ``stored`` (:func:`is_stored`), ``basin`` (fraction of all states that fall into the orbit,
    1.0 = globally attracting), ``max_transient`` (longest transient into it), ``flip_recovery`` (fraction of the
    :math:`P N` states one bit away from an orbit point that fall back into the orbit) and ``orbits`` (number of
    periodic orbits of the network). An orbit that is not stored has basin 0.
    """
    n = _require_network(w, t)
    _require_orbit(orbit, n)
    _require_size(n)
    orbits, orbit_of, transient = periodic_orbits(return_map(w, t))
    result = {"stored": is_stored(orbit, w, t), "basin": 0.0, "max_transient": 0, "flip_recovery": 0.0,
              "orbits": len(orbits)}
    if result["stored"]:
        mine = orbit_of == orbit_of[state_index(orbit[0])]
        flipped = orbit[:, None, :] * (1 - 2 * torch.eye(n, dtype=orbit.dtype))      # (P, N, N): one bit flipped
        result.update(basin=float(mine.double().mean()), max_transient=int(transient[mine].max()),
                      flip_recovery=float(mine[state_index(flipped)].double().mean()))
    return result


def cut_each_wire(w: torch.Tensor, t: torch.Tensor, orbit: torch.Tensor) -> list[dict]:
    """Fault tolerance: for every connection :math:`w_{ij} \\ne 0`, cut it (set it to 0, thresholds kept) and
    report ``dict(i=, j=, weight=, **stability(...))`` of the damaged network."""
    n = _require_network(w, t)
    _require_orbit(orbit, n)
    results = []
    for i, j in torch.nonzero(w).tolist():
        cut = w.clone()
        cut[i, j] = 0
        results.append({"i": i, "j": j, "weight": int(w[i, j]), **stability(cut, t, orbit)})
    return results


def sparsify(w: torch.Tensor, t: torch.Tensor, orbit: torch.Tensor) -> torch.Tensor:
    """Zero insertion, greedy (ours; the DBNN papers use an evolutionary search): visit the connections in row-major
    order and cut each one whose removal keeps the orbit stored and its basin no smaller; repeat until a full pass
    cuts nothing. Returns the sparser ternary matrix (the thresholds are unchanged)."""
    n = _require_network(w, t)
    _require_orbit(orbit, n)
    w, basin = w.clone(), stability(w, t, orbit)["basin"]
    if basin == 0:
        raise ValueError("orbit must be stored by (w, t) before sparsifying")
    changed = True
    while changed:
        changed = False
        for i, j in torch.nonzero(w).tolist():
            trial = w.clone()
            trial[i, j] = 0
            result = stability(trial, t, orbit)
            if result["stored"] and result["basin"] >= basin:
                w, basin, changed = trial, result["basin"], True
    return w


# ----------------------------------------------------------------------------------------------------------------
# Hardware
# ----------------------------------------------------------------------------------------------------------------

def hardware_step(bits: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""The DBNN step as logic: wires, inverters, a popcount and a constant comparison per neuron.

    State bits are 1 where :math:`x_j = -1` (as :func:`qteach.bitops.pack_bits`). A straight wire
    (:math:`w_{ij} = +1`) agrees with its input when the bit is 0, an inverted one (:math:`w_{ij} = -1`) when it
    is 1. With :math:`A_i` agreements among the :math:`k_i` wires of neuron :math:`i`,
    :math:`\sum_j w_{ij} x_j = 2A_i - k_i`, so

    .. math:: x_i^{t+1} = +1 \iff A_i \ge \theta_i = \Big\lceil \frac{k_i + T_i}{2} \Big\rceil,

    no multiplier and no adder of signed numbers. ``bits`` is a bool or 0/1 integer tensor (..., N); returns bool.
    """
    n = _require_network(w, t)
    require_tensor(bits, "bits")
    if bits.dim() == 0 or bits.shape[-1] != n or bits.is_floating_point() or bool(((bits != 0) & (bits != 1)).any()):
        raise ValueError(f"bits must be a bool or 0/1 integer tensor of shape (..., {n})")
    wire, straight = w != 0, w > 0
    agree = wire & (bits.bool()[..., None, :] ^ straight)      # (..., N, N): agreement bit of each wire
    theta = torch.div(wire.sum(1) + t.to(torch.int64) + 1, 2, rounding_mode="floor")
    return agree.sum(-1) < theta                               # bit 1 (state -1) when the count falls short


def hardware_cost(w: torch.Tensor, t: torch.Tensor) -> dict:
    r"""Counts for a hard-wired DBNN on an FPGA of 6-input LUTs (cost rules ours, not the paper's).

    A neuron with at most 6 connections is one 6-input LUT (any Boolean function of its inputs); a wider one is a
    popcount (:func:`qteach.papers.fp_bnn.popcount_cost`, compressor tree) and a comparator of one LUT per count
    bit. Each neuron has a flip-flop for its state bit. The connections are wires (an inverted wire for -1), so a
    hard-wired DBNN stores no weights; a programmable one would need 2 bits per connection.
    """
    n = _require_network(w, t)
    fan_in = (w != 0).sum(1).tolist()
    luts = sum(1 if k <= LUT_INPUTS else popcount_cost(k).luts + k.bit_length() for k in fan_in)
    return {"neurons (sign units)": n, "flip-flops": n, "connections (wires)": sum(fan_in),
            "inverted wires (w = -1)": int((w < 0).sum()), "max fan-in": max(fan_in), "LUTs": luts,
            "multipliers": 0, "weight bits if programmable": 2 * n * n}
