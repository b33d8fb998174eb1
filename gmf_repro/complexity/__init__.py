"""Complexity, in one place: what a fuser or an extractor costs, and the CLI that prints it.

``fusers.py`` measures a fuser as Table 2 reports it (params, FLOPs = 2 x MACs, CPU latency per
sample); ``extractors.py`` the extractors of Tables 4 and 7 at their input shapes; ``cli.py`` is
``python -m gmf_repro.complexity``. Runs (``run.py``) and the report (``report/sizes.py``) use the
same measuring code, so every Params/FLOPs figure follows one convention.
"""
from .extractors import TABLE_INPUTS, measure_extractor
from .fusers import count_flops, count_params, cpu_latency, measure

__all__ = ["TABLE_INPUTS", "count_flops", "count_params", "cpu_latency", "measure", "measure_extractor"]
