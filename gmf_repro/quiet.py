"""Quiet output for the entry points: no library advertising, no library deprecation notices, no lines that
say nothing.

Lightning prints "💡 Tip" lines that advertise its cloud products on every fit, "GPU available: False" on a
machine without one and "`Trainer.fit` stopped: `max_epochs=20` reached" at the normal end; libraries warn
about their own deprecated internals (e.g. Lightning's ``LeafSpec`` under a newer torch) on every batch;
none of it is something a user of this project can act on. Our own warnings and every other line and warning
of the libraries (a GPU that is used, data loader workers, precision, ...) are kept. W&B's own output is
silenced by the logger (loggers.py).
"""
from __future__ import annotations

import logging
import re
import warnings

_TIP_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")


# Lightning's INFO lines that say nothing a user acts on: advertising, an accelerator that is absent (a present GPU
# is still named), and the normal end of training (the summary line follows)
_DROPPED = re.compile(r"💡 Tip|(GPU|TPU|HPU|IPU) available: False|`Trainer.fit` stopped: `max_epochs=\d+` reached")


# the bench's own step limit: in a run, a max_steps stop is a user's early stop and stays; in the bench it is
# how every measurement ends
_STEP_LIMIT = re.compile(r"`Trainer.fit` stopped: `max_steps=\d+` reached")


class _DropNoise(logging.Filter):
    def __init__(self, step_limit: bool = False) -> None:
        super().__init__()
        self.step_limit = step_limit

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (_DROPPED.match(msg) or (self.step_limit and _STEP_LIMIT.match(msg)))


def quiet_libraries(step_limit: bool = False) -> None:
    """Install the filters (idempotent: the last call decides); called first by ``python -m gmf_repro`` and the
    other CLIs. ``step_limit`` also drops the max_steps stop (the bench's, where it ends every measurement)."""
    for name in _TIP_LOGGERS:
        logger = logging.getLogger(name)
        ours = [f for f in logger.filters if isinstance(f, _DropNoise)]
        for f in ours:
            logger.removeFilter(f)
        logger.addFilter(_DropNoise(step_limit))
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        # a warning attributed to any module but ours
        warnings.filterwarnings("ignore", category=category, module=r"(?!gmf_repro)")
    # the tasks define a validation step for data with a val split (data.val_fraction); without one,
    # skipping the val loop is the protocol (the paper has no validation split), not a problem to report
    warnings.filterwarnings("ignore", message=r"You defined a `validation_step` but have no `val_dataloader`")
    # ... and its empty val loader (a `list`, []): Lightning's "Total length of `list` across ranks is zero"
    warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero")
