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
            # no accelerator to speak of, and the normal end of training: nothing to act on (deliberately dropped
            # since the runs became quiet); a GPU that is there, and an early stop, are still said
            lightning.info("GPU available: False, used: False")
            lightning.info("TPU available: False, using: 0 TPU cores")
            lightning.info("`Trainer.fit` stopped: `max_epochs=20` reached.")
            lightning.info("GPU available: True (cuda), used: True")
            lightning.info("`Trainer.fit` stopped: `max_steps=10` reached.")
        assert [r.getMessage() for r in caplog.records] == [
            "GPU available: True (cuda), used: True", "`Trainer.fit` stopped: `max_steps=10` reached."]
        warnings.warn_explicit("old API", FutureWarning, "_pytree.py", 21, module="pytorch_lightning.utilities._pytree")
        warnings.warn_explicit("ours", FutureWarning, "run.py", 1, module="gmf_repro.run")
        warnings.warn_explicit("few workers", UserWarning, "data.py", 1, module="pytorch_lightning.trainer")
        # an empty validation loader ([]) is the protocol's "no validation split"; an empty DataLoader is not
        warnings.warn_explicit("Total length of `list` across ranks is zero. Please make sure this was your "
                               "intention.", UserWarning, "data.py", 106, module="pytorch_lightning.utilities.data")
        warnings.warn_explicit("Total length of `DataLoader` across ranks is zero. Please make sure this was your "
                               "intention.", UserWarning, "data.py", 106, module="pytorch_lightning.utilities.data")
    assert sorted(str(w.message)[:33] for w in seen) == [
        "Total length of `DataLoader` acro", "few workers", "ours"]


def test_the_bench_also_drops_its_step_limit_stop(caplog) -> None:
    """In the bench every measurement ends at max_steps: nothing to say. In a run it is a user's early stop."""
    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    stop = "`Trainer.fit` stopped: `max_steps=300` reached."
    try:
        with caplog.at_level(logging.INFO, logger="pytorch_lightning.utilities.rank_zero"):
            quiet_libraries(step_limit=True)
            lightning.info(stop)
            lightning.info("💡 Tip: try the cloud")
            lightning.info("GPU available: True (cuda), used: True")
            assert [r.getMessage() for r in caplog.records] == ["GPU available: True (cuda), used: True"]
            caplog.clear()
            quiet_libraries()  # a run's filters again: the stop is said
            lightning.info(stop)
            assert [r.getMessage() for r in caplog.records] == [stop]
        assert len(lightning.filters) == 1
    finally:
        quiet_libraries()
