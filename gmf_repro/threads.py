"""How many CPU threads torch uses in a run (``threads``: auto, a number, or null for torch's own choice).

torch's default is one thread per core. A small model's ops are short, so every parallel region waits for
its slowest thread; when another process holds one of those cores (another job, the W&B service, a loader
worker), each op waits out a scheduler time slice. On a 2-core machine the default job with torch's two
threads was 13% faster than with one when the machine was idle, but 1.4x slower with one core taken by another
job and 3-3.9x slower on a busy machine (docs/decisions.md, "CPU threads"). ``auto`` therefore takes half of
the cores that are idle when the run starts, at least 1 and at most ``AUTO_MAX``: one thread on a laptop or a
shared machine, a few on an idle workstation.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

#: the most threads ``auto`` gives (more helps only ops far larger than this project's fusers' on the CPU)
AUTO_MAX = 8


def choose_threads(cores: int, load: float) -> int:
    """``auto``'s count: half of the idle cores (``cores`` minus the 1-minute load average), 1 to ``AUTO_MAX``."""
    idle = max(0.0, cores - load)
    return max(1, min(AUTO_MAX, int(idle // 2)))


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:  # cgroup v2: "<quota> <period>" or "max <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def current_load() -> float:
    """The 1-minute load average (runnable processes, this machine's other jobs included); 0 where unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def set_threads(setting: int | str | None) -> int:
    """Apply ``threads`` (``auto``, a count, or None: torch's default) and return the count torch now uses."""
    import torch

    if setting == "auto":
        torch.set_num_threads(choose_threads(usable_cores(), current_load()))
    elif setting is not None:
        torch.set_num_threads(int(setting))
    return torch.get_num_threads()
