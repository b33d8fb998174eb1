"""Compose the project config from Hydra overrides, for the scripts (same settings as a run, so the same cache)."""
from __future__ import annotations

from typing import Sequence


def compose_data(overrides: Sequence[str]):
    """The composed ``cfg`` for ``overrides`` such as ``data=vggsound data.root=/data/vggsound preset=tiny``;
    a malformed override, an unknown option or a misspelt setting is a one-line UserError, as for a run."""
    from gmf_repro.config import check_override_syntax, check_overrides, check_setting_keys, compose

    check_override_syntax(overrides)
    check_overrides(overrides)
    check_setting_keys(overrides)
    return compose(["paths.output_dir=.", *overrides])


def build_media_datamodule(overrides: Sequence[str], **kw):
    """The media datamodule of ``overrides`` (``data=vggsound`` unless given), without building its cache."""
    from hydra.utils import get_class

    from gmf_repro.data.clip_base import AVClipDataModule
    from gmf_repro.utils import build

    if not any(o.split("=", 1)[0].lstrip("+~") in ("data", "experiment") for o in overrides):
        overrides = ["data=vggsound", *overrides]
    cfg = compose_data(overrides)
    if not issubclass(get_class(cfg.data._target_), AVClipDataModule):
        raise SystemExit(f"error: data={cfg.labels.data} is not a media dataset; "
                         f"use data=vggsound or data=fakeavceleb")
    return build(cfg.data, build_cache=False, **kw)
