"""threads=auto: half of the idle cores, 1 to 8; the count a run trained with is on its summary line."""
from __future__ import annotations

import pytest
import torch

from gmf_repro import threads
from gmf_repro.config import check_settings, compose
from gmf_repro.errors import UserError
from gmf_repro.ui import run_summary_line


@pytest.mark.parametrize("cores, load, expected", [
    (2, 0.0, 1),     # a 2-core laptop, idle: one thread (two measured 1.4-1.6x slower on this project's jobs)
    (2, 3.5, 1),     # busy: one
    (4, 0.2, 1),     # 3.8 idle cores: one, not two
    (8, 0.0, 4),     # an idle workstation: half of its cores
    (16, 10.0, 3),   # a shared server: half of what is idle
    (64, 0.0, 8),    # at most 8
    (1, 0.0, 1),
])
def test_auto_takes_half_the_idle_cores(cores, load, expected):
    assert threads.choose_threads(cores, load) == expected


def test_set_threads_applies_auto_a_number_or_torch_default(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(threads, "usable_cores", lambda: 8)
        monkeypatch.setattr(threads, "current_load", lambda: 0.5)
        assert threads.set_threads("auto") == 3 == torch.get_num_threads()
        monkeypatch.setattr(threads, "current_load", lambda: 7.5)
        assert threads.set_threads("auto") == 1 == torch.get_num_threads()
        assert threads.set_threads(2) == 2 == torch.get_num_threads()
        assert threads.set_threads(None) == 2  # null: left as it is (torch's default in a fresh process)
    finally:
        torch.set_num_threads(before)


def test_usable_cores_reads_the_affinity():
    import os

    assert 1 <= threads.usable_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("value, ok", [("auto", True), (1, True), (None, True), (0, False), ("fast", False),
                                       (1.5, False)])
def test_threads_setting_is_checked(value, ok):
    cfg = compose([f"threads={'null' if value is None else value}"])
    if ok:
        check_settings(cfg)
    else:
        with pytest.raises(UserError, match=r"threads=.* must be auto, an integer >= 1 or null"):
            check_settings(cfg)


def test_default_is_auto():
    assert compose([]).threads == "auto"


@pytest.mark.parametrize("n, text", [(1, "fit 1.0 s on 1 CPU thread"), (4, "fit 1.0 s on 4 CPU threads")])
def test_summary_line_names_the_threads(n, text):
    results = {"fuser": "gmf", "data": "avsynth", "seed": 1, "metrics": {"AV": {"acc": 0.5}},
               "complexity": {"params": 10, "flops": 20}, "timings": {"fit_s": 1.0, "cpu_threads": n}}
    assert run_summary_line(results).endswith(text)
