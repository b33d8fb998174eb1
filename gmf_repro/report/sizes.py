"""Paper-size complexity of a fuser at a run's input dims, so Params/FLOPs compare like with like.

A demo-size run (``conf/fuser/demo/``: fewer, narrower layers) has its own parameter count; beside the
paper's figures, and in claim 1's "fraction of the parameters", the comparable number is the one of
the paper-size configuration (``conf/fuser/<name>.yaml``) at the same input dims, which is what
``python -m gmf_repro.complexity`` measures.
"""
from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=64)
def _paper_size(fuser: str, dims: tuple[tuple[str, int], ...]) -> tuple[int, int] | None:
    from ..complexity import count_flops, count_params
    from ..config import compose, group_options
    from ..utils import build

    if fuser not in group_options("fuser", nested=False):
        return None
    cfg = compose([f"fuser={fuser}"])
    try:
        module = build(cfg.fuser)(dims=dict(dims)).eval()
        return count_params(module), count_flops(module)
    except Exception:  # noqa: BLE001 - a fuser that cannot take these dims has no paper-size figure
        return None


def paper_size(res: dict[str, Any]) -> tuple[int, int] | None:
    """(params, FLOPs) of the paper-size configuration of the run's fuser at its dims, or None if unknown."""
    dims = res.get("dims")
    fuser = res.get("fuser")
    if not isinstance(dims, dict) or not dims or not isinstance(fuser, str):
        return None
    return _paper_size(fuser, tuple((str(m), int(d)) for m, d in dims.items()))


def at_paper_size(res: dict[str, Any]) -> bool | None:
    """True when the run's fuser has the paper-size parameter count, None when that cannot be told."""
    params = (res.get("complexity") or {}).get("params")
    size = paper_size(res) if isinstance(params, int | float) else None
    return None if size is None else int(params) == size[0]
