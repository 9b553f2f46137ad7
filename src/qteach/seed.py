"""One call that makes a notebook's run repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch

from qteach._validate import require_int


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and CUDA) with ``seed``; return a seeded generator.

    Every notebook calls ``qteach.set_seed(0)`` in its setup cell so that its stored outputs are reproducible
    on one machine (across machines, float training differs: see "Portable notebooks" in CONTRIBUTING.md).
    """
    seed = require_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
