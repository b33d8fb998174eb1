"""The entry points' output filters: library advertising and library deprecation notices go, ours stay."""
from __future__ import annotations

import logging
import warnings

from gmf_repro.quiet import quiet_libraries


def test_tips_and_library_deprecations_are_dropped_ours_are_kept(caplog) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        quiet_libraries()
        quiet_libraries()  # idempotent
        lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
        assert len(lightning.filters) == 1
        with caplog.at_level(logging.INFO, logger="pytorch_lightning.utilities.rank_zero"):
            lightning.info("💡 Tip: For seamless cloud logging, try installing litlogger")
            lightning.info("GPU available: False")
        assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]
        warnings.warn_explicit("old API", FutureWarning, "_pytree.py", 21, module="pytorch_lightning.utilities._pytree")
        warnings.warn_explicit("ours", FutureWarning, "run.py", 1, module="gmf_repro.run")
        warnings.warn_explicit("few workers", UserWarning, "data.py", 1, module="pytorch_lightning.trainer")
    assert sorted(str(w.message) for w in seen) == ["few workers", "ours"]
