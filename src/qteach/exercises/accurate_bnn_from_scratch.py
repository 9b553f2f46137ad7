"""Self-checks of the chapter on BinaryDenseNet, training accurate BNNs from scratch
(notebooks/2019/accurate_bnn_from_scratch.ipynb).

Each check calls the student's function, compares it with the official code's formula, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "accurate_bnn_from_scratch"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: channels through a BinaryDenseNet --------------------------------------------------------------


def _final(block_config, reductions, init_features=64, growth=64, rounding=round, floor=True):
    features = init_features
    for i, blocks in enumerate(block_config):
        features += blocks * growth
        if i < len(block_config) - 1:
            reduced = features // reductions[i] if floor else features / reductions[i]
            features = int(rounding(reduced / 32)) * 32
    return features


# BinaryDenseNet-28, -37, -45 (basenet_dense / densenet.py spec), a flex net, and two made-up ones
_CASES = (
    ((6, 6, 6, 5), (2.7, 2.7, 2.2), 64, 64),
    ((6, 8, 12, 6), (3.3, 3.3, 4.0), 64, 64),
    ((6, 12, 14, 8), (2.7, 3.3, 4.0), 64, 64),
    ((2, 2, 2, 2), (2.0, 2.0, 2.0), 64, 64),
    ((3, 5), (1.5,), 32, 48),
    ((1, 1, 1), (4.0, 1.0), 128, 32),
)


@self_check
def check_1(final_features) -> str:
    """Check ``final_features(block_config, reductions, init_features, growth)``: the features that reach the
    classifier of a BinaryDenseNet."""
    label = _label(1)
    expect(callable(final_features), label, "pass your function itself, e.g. check_1(final_features)")
    values = [as_number(final_features(list(b), list(r), i, g), label, f"final_features{(b, r, i, g)}")
              for b, r, i, g in _CASES]
    if values == [_final(*c) for c in _CASES]:
        return passed(label, f"BinaryDenseNet-28/37/45 end with {values[0]:.0f}, {values[1]:.0f} and {values[2]:.0f} features, "
                             "as Larq Zoo's models")
    if values == [_final(*c, rounding=lambda v: v) for c in _CASES] or \
            values == [_final(*c, rounding=int) for c in _CASES]:
        fail(label, "round to the nearest multiple of 32 (int(round(x / 32)) * 32), not down and not at all.")
    if values == [_final(b, r, i, g) - b[-1] * g for b, r, i, g in _CASES]:
        fail(label, "the last stage has no transition after it, but its blocks still add growth features each.")
    if values == [sum(b) * g + i for b, r, i, g in _CASES]:
        fail(label, "the transitions between stages reduce the features: c -> 32 * round((c // r) / 32).")
    fail(label, "start from init_features; each stage adds blocks * growth; each transition (between stages) "
                "maps c to 32 * round((c // r) / 32).")


# --- exercise 2: what a transition costs --------------------------------------------------------------------------


def _transition_macs(in_features, out_features, structure):
    binary, full, features = 0, 0, in_features
    for layer in structure.split(","):
        if layer in ("max_pool", "pool"):
            features //= 2
        elif layer == "fp_conv":
            full += features * out_features
            features = out_features
        elif layer == "q_conv":
            binary += features * out_features
            features = out_features
    return binary, full


_STRUCTURES = ("bn,max_pool,relu,fp_conv", "bn,q_conv", "bn,relu,fp_conv", "bn,q_conv,max_pool",
               "bn,pool,q_conv")
_SIZES = ((160, 80), (448, 160), (30, 7))


@self_check
def check_2(transition_macs) -> str:
    """Check ``transition_macs(in_features, out_features, structure)``: (binary MACs, full-precision MACs)."""
    label = _label(2)
    expect(callable(transition_macs), label, "pass your function itself, e.g. check_2(transition_macs)")
    got, want = [], []
    for structure in _STRUCTURES:
        for n, m in _SIZES:
            value = transition_macs(n, m, structure)
            expect(isinstance(value, (tuple, list)) and len(value) == 2, label,
                   "return a pair (binary MACs, full-precision MACs)")
            got.append(tuple(as_number(v, label, "a MAC count") for v in value))
            want.append(_transition_macs(n, m, structure))
    if got == want:
        return passed(label, "the paper's transition spends half the full-precision MACs a 1x1 layer on all "
                             "features would, because max pooling halves its input first")
    if got == [(b, f) for f, b in want]:
        fail(label, "the pair is in the other order: (binary MACs, full-precision MACs).")
    if all(g[0] + g[1] == w[0] + w[1] for g, w in zip(got, want)):
        fail(label, "the totals are right but not their kind: fp_conv is full precision, q_conv binary.")
    if got == [_transition_macs(n, m, s.replace("max_pool", "bn").replace("pool", "bn"))
               for s in _STRUCTURES for n, m in _SIZES]:
        fail(label, "a pooling layer halves the features that the layers after it read.")
    fail(label, "walk through the structure: pooling halves the current features; a conv costs (current "
                "features) x out_features MACs, binary for q_conv, full precision for fp_conv; bn and relu are "
                "not MACs.")
