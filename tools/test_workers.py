"""Print how many test workers this machine can run at once: one per usable core, at least two, at most eight.

Usable cores: the cores this process may run on, fewer where a cgroup CPU quota says so (a container given two
CPUs of a big host), and no more than one per 2 GB of memory (a notebook kernel with PyTorch needs about 1 GB).
The Makefile's test targets use it: two workers on a 2-core laptop, more on a bigger CI machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def cgroup_cpus() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    limits = [cores] + [int(v) for v in (cgroup_cpus(), (memory_gb() or 0) / 2 or None) if v]
    return max(2, min(8, *limits))


if __name__ == "__main__":
    print(workers())
