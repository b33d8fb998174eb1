"""`python -m gmf_repro.complexity fuser=gmf 'dims=[512,512]' [format=json] [threads=1]`.

Prints each fuser's parameters, FLOPs (FlopCounterMode: FLOPs = 2 x MACs, batch 1) and CPU
latency per sample, beside the paper's Table 2/3 figures where the paper gives them.
``fuser=all`` measures every config in conf/fuser/; ``fuser=a,b`` a list.

``extractor=all`` (or ``extractor=convnext_b,slstm``) measures the extractors of Tables 4 and 7
instead: params and FLOPs at the tables' input shapes, from scratch (no checkpoint needed);
``input_shape='[1,513,60]'`` measures one extractor at another shape.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from ..config import CONF_DIR, group_options, unknown_option
from ..errors import UserError
from ..quiet import quiet_libraries

DEFAULTS = {"fuser": "gmf", "dims": "[512,512]", "modalities": None, "format": "table", "threads": "1",
            "repeats": "30", "extractor": None, "input_shape": None}


HELP = """usage: python -m gmf_repro.complexity [key=value ...]

Each fusion module's parameters, FLOPs (FlopCounterMode at batch 1: FLOPs = 2 x MACs) and CPU latency per
sample, beside the paper's Table 2 / Table 3 figures where the paper gives them; or, with extractor=, the
feature extractors of Tables 4 and 7 at the tables' input shapes. Nothing is trained or downloaded.

Options [default]:
  fuser=NAME|a,b|all     fusers to measure [gmf]; all: every paper-size fuser in conf/fuser/
  dims=[D1,D2,...]       input width of each modality [[512,512]]
  modalities=[m1,m2]     their names [audio,video,text,image, as many as dims]
  format=table|json      a table, or one JSON object per fuser [table]
  threads=N              CPU threads for the latency [1]
  repeats=N              timed forward passes; the median is reported [30]
  fuser.KEY=VALUE        a fuser setting, e.g. fuser.n=8
  extractor=NAME|a,b|all measure extractors instead (conf/extractor/), from scratch, no checkpoint needed
  input_shape=[...]      one extractor at another input shape

Examples:
  python -m gmf_repro.complexity fuser=all 'dims=[512,512]'      # every fuser beside the paper's Table 2
  python -m gmf_repro.complexity fuser=gmf 'dims=[128,4096]' format=json
  python -m gmf_repro.complexity extractor=all"""


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    args = dict(DEFAULTS)
    extra = []
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"arguments are key=value, got '{item}'; e.g. fuser=gmf 'dims=[512,512]' format=json "
                            f"(--help lists them)")
        if key in args:
            args[key] = value
        elif key.startswith("fuser."):
            extra.append(item)  # a fuser hyper-parameter override, e.g. fuser.n=8
        else:
            raise UserError(f"unknown argument '{item}': python -m gmf_repro.complexity takes "
                            f"{', '.join(f'{k}=' for k in DEFAULTS)} and fuser.KEY= (--help explains them)")
    args["overrides"] = extra
    return args


def fuser_names(spec: str) -> list[str]:
    options = group_options("fuser")
    names = group_options("fuser", nested=False) if spec == "all" else spec.split(",")
    for name in names:
        if name not in options:
            raise unknown_option("fuser", name, extra=["all"])
    return names


def parse_dims(text: str) -> list[int]:
    try:
        dims = [int(d) for d in text.strip("[]() ").split(",") if d.strip()]
    except ValueError:
        dims = []
    if not dims:
        raise UserError(f"dims must be a list of integers, e.g. 'dims=[512,512]', got '{text}'")
    return dims


def default_modalities(n: int) -> list[str]:
    return ["audio", "video", "text", "image"][:n] if n <= 4 else [f"m{i}" for i in range(n)]


def measure_fuser(name: str, dims: dict[str, int], overrides: list[str], threads: int, repeats: int) -> dict[str, Any]:
    from ..build import build_fuser
    from ..config import compose
    from .fusers import measure

    cfg = compose([f"fuser={name}", *[o for o in overrides if o.startswith("fuser.")]])
    return {"fuser": name, **measure(build_fuser(cfg, dims), threads=threads, repeats=repeats)}


def paper_figures(name: str, dims: Sequence[int]) -> dict[str, Any]:
    """The paper's params/FLOPs/CPU s for this fuser at these dims, or {} where it reports none.

    A variant in a folder (``retrieval/gmf``, ``paper/mbt``) is its method's row; a ``demo/`` size is not
    the paper's model, so it gets no paper figures."""
    from ..report.paper import paper_complexity

    if name.startswith("demo/"):
        return {}
    return paper_complexity(name.rsplit("/", 1)[-1], list(dims)) or {}


def extractor_rows(spec: str, input_shape: str | None) -> list[tuple[str, str, tuple[int, ...]]]:
    """(extractor, modality, input shape) for each measured row: the tables' shapes unless given."""
    from .extractors import TABLE_INPUTS

    names = list(TABLE_INPUTS) if spec == "all" else spec.split(",")
    options = group_options("extractor")
    for name in names:
        if name not in options:
            raise unknown_option("extractor", name, extra=["all"])
    if input_shape:
        if len(names) != 1:
            raise UserError("input_shape= measures one extractor; name it with extractor=NAME")
        shape = tuple(parse_dims(input_shape))
        return [(names[0], "video" if len(shape) == 4 else "audio", shape)]
    missing = [n for n in names if n not in TABLE_INPUTS]
    if missing:
        raise UserError(f"no table input shape for {missing}; give one with input_shape='[...]'")
    return [(n, m, shape) for n in names for m, shape in TABLE_INPUTS[n]]


def measure_extractors(rows: list[tuple[str, str, tuple[int, ...]]], fmt: str) -> int:
    from omegaconf import OmegaConf

    from ..ui import human
    from ..utils import build
    from .extractors import measure_extractor

    out = []
    for name, modality, shape in rows:
        cfg = OmegaConf.load(CONF_DIR / "extractor" / f"{name}.yaml")
        if "weights" in cfg:
            cfg.weights = None  # the cost does not depend on the weights: no checkpoint needed
        row = {"extractor": name, "modality": modality, "input_shape": list(shape),
               **measure_extractor(build(cfg)(input_shape=shape), shape)}
        out.append(row)
        print(json.dumps(row) if fmt == "json" else
              f"{name:16s} {modality:6s} {str(list(shape)):18s} out {row['out_dim']:5d}"
              f"  params {human(row['params']):>8s}  FLOPs {human(row['flops']):>8s}", flush=True)
    if fmt == "table":
        print("FLOPs = 2 x MACs at batch 1 (LSTM matmuls counted from their sizes); weights not loaded")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return 0
    quiet_libraries()
    try:
        args = parse_args(argv)
        if args["extractor"]:
            if args["format"] not in ("table", "json"):
                raise UserError(f"format must be table or json, got '{args['format']}'")
            import torch

            torch.set_num_threads(int(args["threads"]))
            return measure_extractors(extractor_rows(args["extractor"], args["input_shape"]), args["format"])
        dims_list = parse_dims(args["dims"])
        modalities = (args["modalities"] or "").strip("[]").split(",") if args["modalities"] else None
        modalities = [m.strip() for m in modalities] if modalities else default_modalities(len(dims_list))
        if len(modalities) != len(dims_list):
            raise UserError(
                f"{len(modalities)} modalities {modalities} but {len(dims_list)} dims; give one dim per modality"
            )
        if args["format"] not in ("table", "json"):
            raise UserError(f"format must be table or json, got '{args['format']}'")
        dims = dict(zip(modalities, dims_list, strict=True))
        names = fuser_names(args["fuser"])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        try:
            row = measure_fuser(name, dims, args["overrides"], int(args["threads"]), int(args["repeats"]))
        except Exception as err:  # noqa: BLE001 - one fuser that cannot take these dims must not hide the others
            row = {"fuser": name, "error": f"{type(err).__name__}: {err}"}
        row["paper"] = paper_figures(name, dims_list)
        rows.append(row)
        if args["format"] == "json":
            print(json.dumps(row), flush=True)
    if args["format"] == "table":
        print_table(rows, dims, int(args["threads"]))
    return 1 if any("error" in r for r in rows) else 0


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if ours and theirs else "-"


def print_table(rows: list[dict[str, Any]], dims: dict[str, int], threads: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..ui import human

    table = Table(title=f"Fusion-module complexity, dims {dims}, FLOPs = 2 x MACs at batch 1, "
                        f"CPU latency per sample with {threads} thread(s)")
    for col in ("fuser", "params", "FLOPs", "CPU s", "paper params", "paper FLOPs", "paper CPU s",
                "params ratio", "FLOPs ratio"):
        table.add_column(col, justify="left" if col == "fuser" else "right")
    for r in rows:
        p = r.get("paper", {})
        if "error" in r:
            table.add_row(r["fuser"], f"[red]{r['error'][:60]}", "", "", "", "", "", "", "")
            continue
        table.add_row(
            r["fuser"], human(r["params"]), human(r["flops"]), f"{r['cpu_latency_s']:.5f}",
            human(p["params"]) if p.get("params") else "-", human(p["flops"]) if p.get("flops") else "-",
            f"{p['cpu_s']:.3f}" if p.get("cpu_s") else "-",
            ratio(r["params"], p.get("params")), ratio(r["flops"], p.get("flops")),
        )
    Console(width=160).print(table)

