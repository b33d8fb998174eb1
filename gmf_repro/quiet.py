"""Quiet output for the entry points: no library advertising, no library deprecation notices.

Lightning prints "💡 Tip" lines that advertise its cloud products on every fit, and libraries warn
about their own deprecated internals (e.g. Lightning's ``LeafSpec`` under a newer torch) on every
batch; neither is something a user of this project can act on. Our own warnings and every other
warning of the libraries (data loader workers, precision, ...) are kept.
"""
from __future__ import annotations

import logging
import warnings

_TIP_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_libraries() -> None:
    """Install the filters (idempotent); called first by ``python -m gmf_repro`` and the other CLIs."""
    for name in _TIP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        # a warning attributed to any module but ours
        warnings.filterwarnings("ignore", category=category, module=r"(?!gmf_repro)")
    # the tasks define a validation step for data with a val split (data.val_fraction); without one,
    # skipping the val loop is the protocol (the paper has no validation split), not a problem to report
    warnings.filterwarnings("ignore", message=r"You defined a `validation_step` but have no `val_dataloader`")
