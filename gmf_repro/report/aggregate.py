"""From results.json records to the rows of a table: seeds, settings, failures, unimodal baselines.

- A table holds one dataset's runs: runs on different data are never mixed in one table.
- A run goes to the paper table it recorded (results.json ``table``, the config's ``report.table``).
  A run that recorded none, and every run on your own data (``data=features``, ``data=clips``), goes
  to a table of our runs alone (``own``): its columns are the conditions the runs have. Nothing is
  guessed into a paper table.
- One row per (row, setting): runs are averaged only when their ``setting_digest`` (the config
  digest without the seed, results.py) is the same; a row's label names the settings that set it apart
  from the same fuser's other rows (``GMF n=2``; ``labels``).
- A cell keeps one value per seed (repeats of one seed are averaged first) and shows their mean with
  a 95% t-interval and n (``stats``). A failed job counts in its row as "k failed".
- Table 2's Baseline row takes A and V (A(uni)/V(uni) end to end) from the unimodal runs, as the
  paper prints them; concat's own numbers with one input zeroed are the row ``concat_zeroed``.
- The paper's numbers sit beside ours only when the runs are on the paper's dataset; on other data
  (the embedded avsynth) a paper table shows ours alone, and the claims give the paper's verdicts apart.
- Runs at demo size get paper-size Params/FLOPs (``paper_size``: what each run recorded in results.json's
  ``complexity.paper_size``). A table of our runs alone (the demo's, own data) keeps each run's own complexity.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .labels import setting_variants
from .specs import EXTRA_LABELS, INIT_ROW, TABLE_NAMES, TABLES, Column, TableSpec, norm, with_labels
from .stats import INTERVAL, Stat, t_interval


@dataclass
class Cell:
    """Our per-seed values for one column (paper units) and the paper's number (None where not shown)."""

    values: dict[int, float]
    paper: float | None
    exact: bool = False  # complexity: the same for every seed, shown without an interval

    @property
    def stat(self) -> Stat | None:
        return t_interval(list(self.values.values()))

    @property
    def ours(self) -> float | None:
        stat = self.stat
        return None if stat is None else stat.mean

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def diff(self) -> float | None:
        ours = self.ours
        return None if ours is None or self.paper is None else ours - self.paper


@dataclass
class Row:
    key: str  # unique in its table: the row, then what sets its setting apart ("gmf n=2")
    label: str
    status: str  # "ok", "failed" or "not run"
    n_runs: int  # successful runs
    cells: dict[str, Cell]
    results: list[dict[str, Any]] = field(default_factory=list)
    n_failed: int = 0
    setting: str = ""  # setting digest shared by the row's runs ("" = not recorded)
    base: str = ""  # the row it fills ("gmf", "gmf@128", "unimodal_A"); "" = the key
    variant: str = ""  # what sets its setting apart from the same row's others ("n=2"), "" when alone

    def __post_init__(self) -> None:
        self.base = self.base or self.key

    @property
    def fuser(self) -> str:
        return self.base.split("@")[0]

    @property
    def error(self) -> str:
        """The first failed run's error, "" when none recorded one."""
        return next((str(r["error"]) for r in self.results if not is_ok(r) and r.get("error")), "")


@dataclass
class Table:
    spec: TableSpec
    rows: list[Row]
    notes_above: list[str] = field(default_factory=list)  # what the table compares, before the table
    data: str = ""  # the runs' data ("" = the paper's own table, no runs)
    vs_paper: bool = True  # the paper's numbers beside ours (the runs are on the paper's dataset)

    @property
    def name(self) -> str:
        """``table2_frozen``; ``table2_frozen@avsynth`` when the runs are not on the paper's dataset."""
        if not self.data or self.data in self.spec.data_names or not self.spec.paper_rows:
            return self.spec.name
        return f"{self.spec.name}@{self.data}"

    def row(self, key: str) -> Row:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(f"no row '{key}' in {self.name}; rows: {[r.key for r in self.rows]}")


# ------------------------------------------------------------------------------ where a run goes
def is_ok(res: dict[str, Any]) -> bool:
    return res.get("status", "ok") == "ok" and isinstance(res.get("metrics"), dict) and bool(res["metrics"])


def placed(res: dict[str, Any]) -> bool:
    """Whether the run recorded a paper table (``report.table``, results.json's ``table``)."""
    return res.get("table") in TABLE_NAMES


def row_key(res: dict[str, Any], table: str = "") -> str:
    """The row a run fills: the ``row`` it recorded (``report.row``: the fuser's label, ``gmf@128``,
    ``unimodal_A``, ``gmf_mae`` ...), else its fuser. Nothing else is guessed."""
    return str(res.get("row") or res.get("fuser") or "unknown")


def data_of(res: dict[str, Any]) -> str:
    return str(res.get("data") or "unknown")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def our_value(res: dict[str, Any], column: Column) -> float | None:
    """Our number for one column, in the paper's units, or None when the run did not record it."""
    if column.minus:
        value = our_value(res, replace(column, minus=()))
        minus = our_value(res, replace(column, conditions=column.minus, minus=()))
        return None if value is None or minus is None else value - minus
    for block, key in (("complexity", column.complexity), ("timings", column.timing)):
        if key is not None:
            v = _number((res.get(block) or {}).get(key))
            return None if v is None else v * column.scale
    metrics = res.get("metrics") or {}
    blocks = {norm(k): v for k, v in metrics.items()}
    for block in (blocks.get(c) for c in column.conditions):
        if isinstance(block, dict):
            values = {norm(k): v for k, v in block.items()}
            for m in column.metrics:
                v = _number(values.get(m))
                if v is not None:
                    return v * column.scale
    return None


def paper_size(res: dict[str, Any]) -> tuple[int, int] | None:
    """(params, FLOPs) of the paper-size configuration of the run's fuser at its dims, as the run recorded it
    (``complexity.paper_size``); None if it recorded none."""
    size = (res.get("complexity") or {}).get("paper_size")
    return (int(size["params"]), int(size["flops"])) if isinstance(size, dict) else None


def at_paper_size(res: dict[str, Any]) -> bool | None:
    """True when the run's fuser has the paper-size parameter count, None when that cannot be told."""
    params = (res.get("complexity") or {}).get("params")
    size = paper_size(res) if isinstance(params, int | float) else None
    return None if size is None else int(params) == size[0]


def setting_of(res: dict[str, Any]) -> str:
    """The digest runs must share to be averaged: the setting without the seed, else the whole config."""
    return str(res.get("setting_digest") or res.get("config_digest") or "")


def seed_of(res: dict[str, Any]) -> int:
    seed = res.get("seed")
    return int(seed) if isinstance(seed, int | float) and not isinstance(seed, bool) else 0


def per_seed(runs: Sequence[dict[str, Any]], column: Column, sized: bool = False) -> dict[int, float]:
    """One value per seed (repeats of a seed averaged); with ``sized`` complexity is the paper size's."""
    by_seed: dict[int, list[float]] = {}
    for res in runs:
        value = our_value(res, column)
        if sized and column.complexity in ("params", "flops"):
            size = paper_size(res)
            value = None if size is None else size[0 if column.complexity == "params" else 1] * column.scale
        elif sized and column.complexity is not None:
            value = None  # latency of a demo-size model is not comparable with the paper's
        if value is not None:
            by_seed.setdefault(seed_of(res), []).append(value)
    return {s: sum(v) / len(v) for s, v in sorted(by_seed.items())}


def _groups(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """row key -> setting -> runs; a failed record without a digest joins its row's only setting."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for res in results:
        groups.setdefault(row_key(res), {}).setdefault(setting_of(res), []).append(res)
    for settings in groups.values():
        loose = settings.get("", [])
        named = [s for s in settings if s]
        if loose and len(named) == 1 and not any(is_ok(r) for r in loose):
            settings[named[0]].extend(settings.pop(""))
    return groups


def make_row(spec: TableSpec, base: str, runs: list[dict[str, Any]], setting: str = "", variant: str = "",
             label: str | None = None, vs_paper: bool = True) -> Row:
    """One row of ``spec`` from its runs: cells per column, the paper's numbers when ``vs_paper``."""
    ok = [r for r in runs if is_ok(r)]
    failed = len(runs) - len(ok)
    status = "ok" if ok else ("failed" if runs else "not run")
    sized = spec.vs_paper and bool(ok) and any(at_paper_size(r) is False for r in ok)
    cells = {}
    for col in spec.columns:
        p = spec.paper_rows.get(base, {}).get(col.name) if vs_paper else None
        cells[col.name] = Cell(per_seed(ok, col, sized), None if p is None else p * col.paper_scale,
                               exact=col.complexity is not None)
    label = label if label is not None else _label(spec, base)
    key = f"{base} {variant}" if variant else base
    return Row(key, f"{label} {variant}" if variant else label, status, len(ok), cells, list(runs), failed,
               setting, base=base, variant=variant)


def _label(spec: TableSpec, key: str) -> str:
    return spec.labels.get(key) or spec.labels.get(key.split("@")[0]) or EXTRA_LABELS.get(key) or key


def _baseline_from_unimodal(spec: TableSpec, rows: dict[str, Row], unimodal: dict[str, list[Row]],
                            vs_paper: bool) -> list[str]:
    """Baseline (concat) A/V cells from the unimodal runs; concat's own zeroed-input numbers as their own row."""
    notes = []
    concat = rows.get("concat")
    if concat is not None and concat.status != "not run":
        zeroed = Row("concat_zeroed", EXTRA_LABELS["concat_zeroed"], concat.status, concat.n_runs,
                     {c: Cell(dict(cell.values), None, cell.exact) for c, cell in concat.cells.items()},
                     concat.results, concat.n_failed, concat.setting)
        rows["concat_zeroed"] = zeroed
    if concat is None and any(unimodal.values()):
        concat = rows["concat"] = make_row(spec, "concat", [], vs_paper=vs_paper)
    if concat is None:
        return notes
    for col in spec.columns:
        if col.name in (spec.missing or ()) and col.name not in spec.unimodal:
            concat.cells[col.name].values = {}  # the paper's Baseline has "-" here; see concat_zeroed
    for col_name, letter in spec.unimodal.items():
        candidates = unimodal.get(letter, [])
        cell = concat.cells[col_name]
        if not candidates:
            cell.values = {}
            continue
        best = max(candidates, key=lambda r: r.n_runs)
        if len(candidates) > 1:
            notes.append(f"{len(candidates)} settings of the unimodal {letter} runs; the Baseline uses the one "
                         f"with the most runs ({best.variant or 'the first'})")
        source = next(c for c in spec.columns if c.name == col_name)
        cell.values = per_seed([r for r in best.results if is_ok(r)], Column(
            col_name, conditions=(norm(letter),), metrics=source.metrics, scale=source.scale))
        concat.results = concat.results + best.results
        concat.n_failed += best.n_failed
        if concat.status == "not run":
            concat.status = best.status
    return notes


def _notes_above(spec: TableSpec, rows: list[Row], data: str, vs_paper: bool) -> list[str]:
    runs = [r for row in rows for r in row.results if is_ok(r)]
    notes = []
    if runs and spec.dataset and not vs_paper:
        notes.append(f"These runs are on {data}, not {spec.dataset}: the paper's numbers are not shown beside "
                     f"them (different data, no difference to take); the claims below give the paper's own "
                     f"verdicts apart.")
    elif runs and not spec.dataset and data not in spec.title:
        notes.append(f"Data: {data}.")
    if not spec.vs_paper:
        return notes  # our runs at their own size; the legend says what a cell is
    demo = sorted({row.label for row in rows for r in row.results if is_ok(r) and at_paper_size(r) is False})
    if demo:
        notes.append(f"Not at paper size: {', '.join(demo)}. Their accuracy is the smaller model's; their "
                     f"Params/FLOPs cells are the paper-size configuration at the same input dims "
                     f"(gmf_repro.complexity), so those columns compare architectures like with like; CPU s is "
                     f"left out.")
    if runs:
        notes.append(f"Cells: mean ± half-width of the {INTERVAL} (n = seeds); runs are averaged only when their "
                     f"settings differ by the seed alone.")
    return notes


def build_table(results: Sequence[dict[str, Any]], table: str, all_rows: bool = False,
                data: str | None = None, labels: str = "learned") -> Table:
    """One table of one dataset's runs: paper rows first (paper order; then ``row_order``), then the rest.

    ``data``: the runs' data (default: theirs; "" for the paper's own table). The paper's numbers are
    shown only when it is the table's dataset. ``labels``: ``learned`` or ``stream`` (``specs.with_labels``)."""
    if table not in TABLES:
        raise ValueError(f"unknown table '{table}': choose one of {', '.join(TABLE_NAMES)}")
    return assemble(with_labels(TABLES[table], labels), results, all_rows, data)


def assemble(spec: TableSpec, results: Sequence[dict[str, Any]], all_rows: bool = False,
             data: str | None = None) -> Table:
    """The table ``spec`` describes, from its runs (``build_table``; own data's specs are made per dataset)."""
    if data is None:
        data = next((data_of(r) for r in results), "")
    vs_paper = spec.vs_paper and (not data or data in spec.data_names)
    groups = _groups(results)
    unimodal: dict[str, list[Row]] = {}
    if spec.unimodal:
        for key in [k for k in groups if k.startswith("unimodal_")]:
            named, _ = _named(groups.pop(key))
            unimodal[key.split("_", 1)[1]] = [make_row(spec, key, runs, s, variant, label=key, vs_paper=vs_paper)
                                              for s, (runs, variant) in named.items()]
    listed = list(dict.fromkeys([*spec.paper_rows, *spec.row_order]))
    keys = [k for k in listed if k in groups or (all_rows and k in spec.paper_rows)] + [k for k in groups
                                                                                        if k not in listed]
    rows: dict[str, Row] = {}
    notes: list[str] = []
    for key in keys:
        named, clear = _named(groups.get(key, {"": []}))
        for setting, (runs, variant) in named.items():
            row = make_row(spec, key, runs, setting, variant, vs_paper=vs_paper)
            rows[row.key] = row
        if not clear:
            notes.append(unnamed_note(_label(spec, key), len(named)))
    if spec.unimodal:
        notes += _baseline_from_unimodal(spec, rows, unimodal, vs_paper)
    position = {k: float(i) for i, k in enumerate(dict.fromkeys([*listed, *keys]))}
    position["concat_zeroed"] = position.get("concat", -1.0) + 0.5
    if INIT_ROW not in spec.paper_rows:
        position[INIT_ROW] = position.get("gmf", len(position)) + 0.5  # beside the GMF it is the start of
    ordered = sorted(rows.values(), key=lambda r: position.get(r.base, len(position)))  # stable: settings in order
    return Table(spec, ordered, _notes_above(spec, ordered, data, vs_paper) + notes, data, vs_paper)


def _named(settings: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, tuple[list[dict[str, Any]], str]], bool]:
    """setting -> (runs, what sets it apart from the row's other settings), and whether all could be named."""
    variants, clear = setting_variants(settings)
    return {s: (runs, variants[s]) for s, runs in settings.items()}, clear


def unnamed_note(label: str, n: int) -> str:
    return (f"{label}: {n} settings that differ in something no .hydra/overrides.yaml beside their results.json "
            f"shows (a config file edited between runs, or results.json without its run folder); numbered in the "
            f"order found.")


def paper_table(table: str) -> Table:
    """The paper's own table, every row (what the claims' "paper's own numbers" verdicts read)."""
    return build_table([], table, all_rows=True, data="")


OWN_DATA = ("features", "clips")


def is_own_data(res: dict[str, Any]) -> bool:
    """Runs on your own data (``data=features``, ``data=clips``): their conditions are not the paper's columns."""
    return norm(res.get("data") or "") in OWN_DATA


def build_tables(results: Sequence[dict[str, Any]], table: str | None = None, all_rows: bool = False,
                 labels: str = "learned") -> list[Table]:
    """Each dataset's runs in the table they recorded (paper order), runs that recorded none and runs on
    own data in tables of their own conditions (``own``); with ``table``, every run in that layout.

    One table per (table, dataset): runs on different data are never mixed; the data names of the paper's
    dataset are one (the unimodal runs on ``fakeavceleb`` beside the fusers on ``fakeavceleb_features``)."""
    from .own import own_tables

    by_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    own: list[dict[str, Any]] = []
    for res in results:
        name = table or (str(res["table"]) if placed(res) and not is_own_data(res) else None)
        if name is None:
            own.append(res)
        else:
            names = TABLES[name].data_names
            by_table.setdefault((name, names[0] if data_of(res) in names else data_of(res)), []).append(res)
    order = {t: i for i, t in enumerate(TABLE_NAMES)}

    def place(item: tuple[tuple[str, str], Any]) -> tuple[int, bool, str]:  # paper order, the paper's data first
        (name, data), _ = item
        return order.get(name, len(order)), data not in TABLES[name].data_names, data

    tables = [build_table(runs, t, all_rows, data, labels) for (t, data), runs in sorted(by_table.items(), key=place)]
    return tables + own_tables(own)


def unplaced_note(results: Sequence[dict[str, Any]]) -> str | None:
    """How many runs recorded no paper table (and are not on own data): reported as our own runs, never guessed."""
    n = sum(not placed(r) and not is_own_data(r) for r in results)
    if not n:
        return None
    return (f"{n} of {len(results)} runs recorded no paper table (results.json 'table', the config's report.table): "
            f"they are shown as our own runs, a table of the conditions they have, not placed in one of the paper's "
            f"tables; a table experiment records it (report.table=<table>), or --table puts every run in one.")
