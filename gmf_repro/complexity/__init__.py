"""Complexity, in one place: what a fuser or an extractor costs, and the CLI that prints it.

``fusers.py`` measures a fuser as Table 2 reports it (params, FLOPs = 2 x MACs, CPU latency per
sample) and, for a run at another size, its paper-size configuration (``paper_size``, recorded in
results.json for the report); ``extractors.py`` the extractors of Tables 4 and 7 at their input shapes;
``cli.py`` is ``python -m gmf_repro.complexity`` (an entry point above the run). Runs and the CLI use the
same measuring code, so every Params/FLOPs figure follows one convention.
"""
from .extractors import TABLE_INPUTS, measure_extractor
from .fusers import count_flops, count_params, cpu_latency, measure, paper_size

__all__ = ["TABLE_INPUTS", "count_flops", "count_params", "cpu_latency", "measure", "measure_extractor", "paper_size"]
