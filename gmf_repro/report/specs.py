"""The paper's tables as data: columns, where our numbers come from, the paper's rows (docs/paper.md §5).

Also the demo's table (``make demo``): the same kind of columns over our runs alone, plus the drops
(AV minus A, AV minus V) and the fit time.

Table definitions only; ``aggregate`` turns results.json files into rows of these tables and
``render`` prints them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import paper

# The paper's tables, in the report's order (``--table`` choices); TABLES also holds "demo" (our runs alone).
TABLE_NAMES: tuple[str, ...] = ("table2_frozen", "table2_trainable", "table3", "table4", "table7")


def norm(key: object) -> str:
    """Lower-case alphanumerics only, so "mAP@10", "map_10" and "map10" meet, as do "A(uni)" and "A_uni"."""
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


@dataclass(frozen=True)
class Column:
    """One column: where our number comes from in results.json and how it maps to the paper's units."""

    name: str
    conditions: tuple[str, ...] = ()  # the metrics block (condition) it reads, normalized: what runs write
    metrics: tuple[str, ...] = ()  # the metric name in that block, normalized: what runs write
    complexity: str | None = None  # key in results["complexity"] instead of a metric
    timing: str | None = None  # key in results["timings"] (seconds, e.g. "fit_s") instead of a metric
    minus: tuple[str, ...] = ()  # a drop: the metric in `conditions` minus the same metric in this block
    scale: float = 1.0  # ours * scale -> paper units
    paper_scale: float = 1.0  # paper.py value * paper_scale -> display units
    decimals: int = 2


@dataclass(frozen=True)
class TableSpec:
    """A paper table: its columns, its rows (paper order) and the columns claims read."""

    name: str
    title: str
    columns: tuple[Column, ...]
    paper_rows: dict[str, dict[str, float | None]]  # row key -> column -> value (paper.py units)
    labels: dict[str, str]
    main: str  # the column claims compare: the score with every modality ("AV" accuracy or its stand-in)
    # the columns with one modality missing, for claims 2 and 3 (Table 2: A and V), if any
    missing: tuple[str, ...] | None = None
    tolerance: float = 2.0  # "close to the best" for claim 1, in the main column's units
    notes: tuple[str, ...] = ()
    dataset: str = ""  # the paper's dataset, as a person reads it
    data_names: tuple[str, ...] = ()  # results.json `data` values that are that dataset
    # Baseline row cells the paper fills from the unimodal baselines: column -> condition letter
    unimodal: dict[str, str] = field(default_factory=dict)
    # False: a table of our runs alone (the demo): each run's own complexity, no paper / difference in the
    # cells, and a single seed's value without "(n=1, no interval)"
    vs_paper: bool = True
    row_order: tuple[str, ...] = ()  # rows listed first, in this order, after the paper's rows
    show_errors: bool = False  # a failed row's label carries its run's error
    plot: tuple[str, ...] = ()  # the columns the robustness plot draws (default: main, then missing)
    # condition -> the per-stream label kind its columns read with ``labels="stream"`` (FakeAVCeleb: A against the
    # audio's real/fake, V the video's, AV the clip's: metrics ``<metric>_<kind>_label``); empty: no such labels
    stream_labels: dict[str, str] = field(default_factory=dict)

    @property
    def plot_columns(self) -> tuple[str, ...]:
        return self.plot or ((self.main, *(self.missing or ())) if self.missing else ())


# Rows that are no paper row: how the report labels them wherever they appear
INIT_ROW = "gmf_init"  # GMF evaluated at its initialisation, the reference of claim 4 (conf/claims_row/gmf_init.yaml)
EXTRA_LABELS: dict[str, str] = {
    "concat_zeroed": "Concat, one input zeroed",
    INIT_ROW: "GMF, untrained (at initialisation)",
}


# ------------------------------------------------------------------------------ table specs
def _acc(name: str, condition: str) -> Column:
    return Column(name, conditions=(norm(condition),), metrics=("acc",), scale=100.0)


def _auc(name: str, condition: str) -> Column:
    return Column(name, conditions=(norm(condition),), metrics=("auroc",), scale=100.0)


_COMPLEXITY_COLUMNS = (
    Column("CPU s", complexity="cpu_latency_s", decimals=4),
    Column("Params (M)", complexity="params", scale=1e-6, paper_scale=1e-6),
    Column("FLOPs (G)", complexity="flops", scale=1e-9, paper_scale=1e-9),
)
_ACC_NOTE = "Accuracy in % (ours converted from the fraction in results.json)."
_CPLX_NOTES = (
    "FLOPs: ours are FlopCounterMode FLOPs (2 x MACs); the paper does not say whether its G means GFLOPs or GMACs.",
    "CPU s: ours on this machine (results.json complexity.threads threads); the paper's on a Ryzen 9 5900X.",
)
_UNIMODAL_NOTE = ("Baseline row: AV from the concat run; its A and V cells (A(uni)/V(uni) when trained end to end) "
                  "come from the unimodal runs (one extractor + linear head), as in the paper, not from concat "
                  "with one input zeroed, which is the row 'Concat, one input zeroed'.")
_VGGSOUND = ("vggsound", "vggsound_features")
_FAKEAVCELEB = ("fakeavceleb", "fakeavceleb_features")
_STREAMS = {"A": "audio", "V": "video", "AV": "clip"}
_FAKE_NOTES = ("ACC/AUC in %. Claims compare AUC: with 1:39 classes ACC sits near the majority rate.",
               "Each run is scored against the labels it learned (fusers: the clip's, fake if either stream is; "
               "the unimodal baselines: their own stream's); --labels stream scores A against the audio's labels, "
               "V against the video's and AV against the clip's (docs/paper.md §2.7).")


def _with_complexity(rows: dict[str, dict[str, float | None]], complexity: dict) -> dict:
    out = {}
    for key, cols in rows.items():
        c = complexity.get(key, {})
        out[key] = {**cols, "CPU s": c.get("cpu_s"), "Params (M)": c.get("params"), "FLOPs (G)": c.get("flops")}
    return out


def _table3_rows() -> tuple[dict[str, dict[str, float | None]], dict[str, str]]:
    rows, labels = {}, {}
    for setting in paper.TABLE3_SETTINGS:
        for fuser, cols in paper.TABLE3[setting].items():
            c = paper.TABLE3_COMPLEXITY[setting][fuser]
            rows[f"{fuser}@{setting}"] = {**cols, "Params (M)": c["params"], "FLOPs (G)": c["flops"]}
            labels[f"{fuser}@{setting}"] = f"{paper.LABELS[fuser]} ({setting})"
    return rows, labels


def _drop(name: str, condition: str, minus: str) -> Column:
    return replace(_acc(name, condition), minus=(norm(minus),))


_DEMO = TableSpec(
    "demo",
    "Demo-size fusers, frozen-extractor setting: accuracy % with one modality zeroed (A, V) or both given (AV)",
    (
        _acc("A", "A"), _acc("V", "V"), _acc("AV", "AV"), _drop("AV-A", "AV", "A"), _drop("AV-V", "AV", "V"),
        Column("Params (M)", complexity="params", scale=1e-6, decimals=3),
        Column("FLOPs (M)", complexity="flops", scale=1e-6),
        Column("CPU s/sample", complexity="cpu_latency_s", decimals=5),
        Column("fit s", timing="fit_s", decimals=1),
    ),
    paper_rows={},
    labels={},
    main="AV",
    missing=("A", "V"),
    notes=(_ACC_NOTE, "AV-A: accuracy lost when the video is zeroed (AV minus A); AV-V: when the audio is.",
           "Params, FLOPs and CPU s/sample are the demo-size fuser's (CPU s on results.json complexity.threads "
           "threads); paper size: python -m gmf_repro.complexity fuser=all. fit s: training wall time."),
    vs_paper=False,
    row_order=tuple(paper.TABLE2_FROZEN),  # the paper's order; a fuser it lacks comes after
    show_errors=True,
)


def _build_specs() -> dict[str, TableSpec]:
    t3_rows, t3_labels = _table3_rows()
    # what both halves of Table 2 share: VGGSound, AV the main column, A and V the missing-modality ones
    table2 = dict(main="AV", missing=("A", "V"), notes=(_ACC_NOTE, *_CPLX_NOTES, _UNIMODAL_NOTE), dataset="VGGSound",
                  data_names=_VGGSOUND)
    map_cols = tuple(
        Column(c, conditions=(norm("IV"),), metrics=(norm(c),), decimals=3)  # image queries, video gallery
        for c in paper.TABLE3_COLUMNS
    )
    return {
        "table2_frozen": TableSpec(
            "table2_frozen",
            "Table 2 (VGGSound), frozen extractor: accuracy % with one modality zeroed (A, V) or both given (AV)",
            (_acc("A", "A"), _acc("V", "V"), _acc("AV", "AV"), *_COMPLEXITY_COLUMNS),
            _with_complexity(paper.TABLE2_FROZEN, paper.PAPER_COMPLEXITY),
            dict(paper.LABELS),
            **table2,
            unimodal={"A": "A", "V": "V"},
        ),
        "table2_trainable": TableSpec(
            "table2_trainable",
            "Table 2 (VGGSound), extractors trained end to end: accuracy %; (uni) = linear probe on one extractor",
            (
                _acc("A(uni)", "A(uni)"),
                _acc("A", "A"),
                _acc("V(uni)", "V(uni)"),
                _acc("V", "V"),
                _acc("AV", "AV"),
                *_COMPLEXITY_COLUMNS,
            ),
            _with_complexity(paper.TABLE2_TRAINABLE, paper.PAPER_COMPLEXITY),
            dict(paper.LABELS),
            **table2,
            unimodal={"A(uni)": "A", "V(uni)": "V"},
        ),
        "table3": TableSpec(
            "table3",
            "Table 3 (ActivityNet image-to-video retrieval): mAP@k; (dims) = image-video feature dims",
            (*map_cols, _COMPLEXITY_COLUMNS[1], _COMPLEXITY_COLUMNS[2]),
            t3_rows,
            t3_labels,
            main="mAP@10",
            tolerance=0.02,
            notes=("mAP as a fraction, as the paper prints it.", _CPLX_NOTES[0]),
            dataset="ActivityNet (AP-IVR features)",
            data_names=("activitynet",),
        ),
        "table4": TableSpec(
            "table4",
            "Table 4 (FakeAVCeleb, AV input): ACC and AUC %",
            (_acc("ACC", "AV"), _auc("AUC", "AV")),
            dict(paper.TABLE4),
            dict(paper.LABELS),
            main="AUC",
            notes=_FAKE_NOTES,
            dataset="FakeAVCeleb",
            data_names=_FAKEAVCELEB,
            stream_labels=_STREAMS,
        ),
        "table7": TableSpec(
            "table7",
            "Table 7 (FakeAVCeleb, missing modalities): ACC and AUC % for A, V, AV",
            (
                _acc("ACC A", "A"), _acc("ACC V", "V"), _acc("ACC AV", "AV"),
                _auc("AUC A", "A"), _auc("AUC V", "V"), _auc("AUC AV", "AV"),
            ),
            dict(paper.TABLE7),
            {k: f"{v} [{paper.TABLE7_EXTRACTORS[k]}]" for k, v in paper.LABELS.items() if k in paper.TABLE7},
            main="AUC AV",
            missing=("AUC A", "AUC V"),
            notes=(*_FAKE_NOTES, _UNIMODAL_NOTE.replace("A(uni)/V(uni) when trained end to end", "ACC and AUC")),
            dataset="FakeAVCeleb",
            data_names=_FAKEAVCELEB,
            unimodal={"ACC A": "A", "ACC V": "V", "AUC A": "A", "AUC V": "V"},
            stream_labels=_STREAMS,
        ),
        "demo": _DEMO,
    }


TABLES: dict[str, TableSpec] = _build_specs()

LABELS_CHOICES = ("learned", "stream")


def with_labels(spec: TableSpec, labels: str = "learned") -> TableSpec:
    """``spec`` as it reads each run's metrics: ``learned`` (as it is: against the labels the run learned) or
    ``stream`` (each condition's column against its per-stream labels, ``spec.stream_labels``)."""
    if labels not in LABELS_CHOICES:
        raise ValueError(f"labels={labels!r}: use one of {', '.join(LABELS_CHOICES)}")
    if labels == "learned" or not spec.stream_labels:
        return spec
    kinds = {norm(c): k for c, k in spec.stream_labels.items()}
    columns = tuple(replace(c, metrics=tuple(norm(f"{m}_{kinds[c.conditions[0]]}_label") for m in c.metrics))
                    if c.conditions and c.conditions[0] in kinds and not c.minus else c for c in spec.columns)
    legend = ", ".join(f"{c} against the {k}'s labels" for c, k in spec.stream_labels.items())
    return replace(spec, columns=columns, notes=(*spec.notes, f"Scored per stream: {legend}."))


