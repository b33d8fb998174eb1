"""Where the config tree lives, and the checks that turn a wrong choice into one clear line."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import UserError

# `gmf_repro/conf` links to the top-level `conf/` in a checkout and is a real folder in an installed wheel.
CONF_DIR = Path(__file__).resolve().parent / "conf"


def group_options(group: str, nested: bool = True) -> list[str]:
    """Config names in a group folder, e.g. ``fuser`` -> ``["concat", "demo/gmf", "gmf", ...]``.

    ``nested=False`` keeps the top level only (the paper configurations, without ``demo/`` variants).
    """
    folder = CONF_DIR / group
    if not folder.is_dir():
        return []
    files = folder.rglob("*.yaml") if nested else folder.glob("*.yaml")
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in files)


def check_overrides(overrides: Sequence[str]) -> None:
    """Reject ``group=unknown`` before Hydra composes, naming the valid options (sweeps ``a,b`` too)."""
    for item in overrides:
        if "=" not in item or item.startswith(("hydra", "~")):
            continue
        key, value = item.split("=", 1)
        key = key.lstrip("+")
        group = key.split("@", 1)[0].lstrip("/")
        if "." in group or not (CONF_DIR / group).is_dir() or value in ("null", ""):
            continue
        values = value.split(",") if not value.startswith(("[", "choice(", "range(", "glob(")) else []
        options = group_options(group)
        for v in values:
            if v not in options:
                raise UserError(f"unknown {group} '{v}': choose one of {', '.join(options)} (conf/{group}/)")
