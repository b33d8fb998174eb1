"""A job's name: its fuser plus the overrides of the fuser's own settings (``gmf n=2 beta=0.5``), never a digest.

A job knows only its own command line, so its label (the per-job summary line, the W&B run name) is built
from its overrides here; the report, which sees every run, names its rows the same way from each run
folder's overrides (report/labels.py).
"""
from __future__ import annotations

from collections.abc import Sequence

# override keys (and their sub-keys) that change no result: results.setting_digest leaves them out
NOT_SETTINGS = ("seed", "paths", "checkpoint", "labels", "report", "hydra", "logger.name", "logger.group",
                "logger.tags")


def parse_override(text: str) -> tuple[str, str]:
    """``+fuser.n=2`` -> ``("fuser.n", "2")``; a deletion ``~fuser.n`` -> ``("fuser.n", "~")``."""
    text = str(text).strip()
    if text.startswith("~"):
        return text.lstrip("~").split("=", 1)[0], "~"
    key, _, value = text.lstrip("+").partition("=")
    return key.strip(), value.strip()


def is_setting(key: str) -> bool:
    return not any(key == p or key.startswith(p + ".") for p in NOT_SETTINGS)


def shown(items: Sequence[tuple[str, str]]) -> list[str]:
    """``key=value`` with each key's last part (``n=2``), or the whole key where two shown keys share it."""
    last = [k.rsplit(".", 1)[-1] for k, _ in items]
    return [f"{short if last.count(short) == 1 else key}={value}"
            for (key, value), short in zip(items, last, strict=True)]


def job_label(fuser: str, overrides: Sequence[str]) -> str:
    """A job's label: its fuser and the overrides of the fuser's own settings, ``gmf n=2 beta=0.5``, and the
    table row chosen when it is not the fuser (``gmf claims_row=gmf_init``, ``concat claims_row=unimodal_audio``)."""
    items = [parse_override(o) for o in overrides]
    row = [(k, v) for k, v in items if k.endswith("_row") and "." not in k and v != fuser]
    return " ".join([fuser, *shown([(k, v) for k, v in items if k.startswith("fuser.")] + row)])
