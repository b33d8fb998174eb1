"""One line before training when the fuser is far larger than the data can train (docs/decisions.md, "Size guard").

The case it is for: ``data=clips`` without extractors feeds the fuser raw frames and spectrograms (6,400 and
3,072 values per clip), and GMF at those widths has 440M parameters, for 37 clips. Nothing fails; the run
memorises its few samples, writes gigabytes of checkpoints and reports accuracy that means little. The rule:

- a fuser input wider than the training set has samples (more values per sample than samples: any linear map of
  that input can fit every training label), or
- more than ``MAX_PARAMS_PER_SAMPLE`` fuser parameters per training sample: 8x the most any of the paper's own
  configurations has (Table 3's GMF at 128/4096: 119.2M parameters for ActivityNet's 10,024 training videos,
  11,900 per sample; Table 2's fusers on VGGSound have at most ~300).

It warns and trains on: a small experiment can be deliberate.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl

MAX_PARAMS_PER_SAMPLE = 100_000


def oversize_warning(fuser: str, params: int, dims: Mapping[str, int], n_train: int) -> str | None:
    """The warning for a fuser of ``params`` trainable parameters over inputs of ``dims`` trained on ``n_train``
    samples, or None when the data warrants it (the rule above)."""
    if n_train <= 0:
        return None
    wide = {m: d for m, d in dims.items() if d > n_train}
    per_sample = params / n_train
    if not wide and per_sample <= MAX_PARAMS_PER_SAMPLE:
        return None
    from .ui import human

    what = []
    if wide:
        widths = " and ".join(f"{m} {d:,}" for m, d in wide.items())
        what.append(f"inputs wider than the {n_train:,} training samples ({widths} values per sample)")
    if per_sample > MAX_PARAMS_PER_SAMPLE:
        what.append(f"{human(params)} parameters, {human(per_sample)} per training sample (the paper's largest "
                    f"has 12K)")
    from .config import group_options

    demo = f"demo/{fuser.rsplit('/', 1)[-1]}"
    smaller = f"fuser={demo}" if demo in group_options("fuser") else "a smaller fuser"
    fix = ("give the modalities extractors (e.g. extractor@extractors.video=r2plus1d_18 "
           "extractor@extractors.audio=resnet18_audio) or train on extracted features (data=features)"
           if wide else f"choose {smaller} or train on more data")
    return (f"warning: {fuser} has {' and '.join(what)}: it will memorise its training samples; {fix} "
            f"(remove this check with ~callbacks.size_guard)")


class SizeGuard(pl.Callback):
    """``callbacks.size_guard`` (conf/config.yaml): ``oversize_warning`` on stderr once, before the first step.

    ``fuser``: the run's fuser label (``labels.fuser``), which the fix names."""

    def __init__(self, fuser: str | None = None) -> None:
        self.fuser = fuser

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from .checkpointing import samples_and_batch

        fuser: Any = getattr(pl_module, "fuser", None)
        found = samples_and_batch(trainer.train_dataloader)
        if fuser is None or found is None or not trainer.is_global_zero:
            return
        params = sum(p.numel() for p in fuser.parameters() if p.requires_grad)
        text = oversize_warning(self.fuser or type(fuser).__name__.lower(), params, dict(getattr(fuser, "dims", {})),
                                found[0])
        if text:
            print(text, file=sys.stderr, flush=True)
