"""The paper's four claims, each a paired comparison the data can decide either way (docs/report.md).

Our verdicts are computed on the per-seed values, never on means alone: every comparison of two
rows is paired (same seed = same data draw and initialisation seed), and a verdict is "yes" or "no"
only when the 95% t-interval of the paired difference lies entirely on one side of the threshold;
otherwise it is "inconclusive", always with n and the numbers behind it. One seed has no interval,
so a single-seed verdict is "inconclusive (n=1)" with what its point estimates say. Parameter and
FLOP counts are the same for every seed and are compared as they are. The paper's numbers are single
values, compared as they are, and always from the paper's whole table, whatever rows we ran.
"mixed": holds for some GMF rows or comparisons and not others; "not testable": the runs lack what
the claim needs, and the text says what.

1. For every fuser x outside the GMF family: GMF - x >= -tolerance on the main column (close), and
   GMF has fewer parameters (no more FLOPs) than x unless x is clearly worse (GMF - x > tolerance):
   a fuser as good as GMF that costs less, a parameter-free concat included, refutes the claim; a
   worse one does not.
2. For every fuser x outside the family and every column with one modality missing: x's drop from
   the main column minus GMF's drop > 0.
3. For every ``g_<x>`` with an ``<x>`` row: G-x - x > 0 on the main column and on the mean of the
   missing-modality columns.
4. MI between the two parts GMF concatenates (inv_{j+1}, spec_j) at initialisation minus after
   training > 0 (the same GMF, the same seed: the row ``gmf_init``), and the test cross-entropy
   (nats) of concat minus GMF's > 0 on the main column: both must hold.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .aggregate import Row, Table, is_ok, paper_table, per_seed, seed_of
from .specs import INIT_ROW, TABLES
from .stats import INTERVAL, Stat, decide, fmt_interval, fmt_stat, paired, t_interval

CLAIMS: dict[int, str] = {
    1: "GMF is close to the best fusers on AV with a fraction of their parameters and FLOPs",
    2: "GMF loses the least accuracy when one modality is missing",
    3: "GMF as a front-end (G-MBT, G-Perceiver) raises the back-end's AV score and its robustness",
    4: "GMF reduces mutual information and entropy in feature representations",
}
RULE = (f"yes/no only when the {INTERVAL} of the paired difference (same seed) excludes the threshold, "
        f"else inconclusive; n = seeds")
TIE = 1e-9  # |difference| below this is a tie (an untrained GMF against its own initialisation reads exactly 0)


@dataclass
class Verdict:
    claim: int
    verdict: str  # "yes" | "no" | "inconclusive" | "mixed" | "not testable"
    detail: str
    n: int | None = None  # seeds behind the verdict (None: the paper's own numbers)
    means_say: str | None = None  # for an inconclusive verdict: what the means alone would say

    def __str__(self) -> str:
        head = self.verdict
        if self.n is not None and self.verdict != "not testable":
            extra = f"; the means alone would say {self.means_say}" if self.means_say else ""
            head = f"{self.verdict} (n={self.n}{extra})"
        return f"{head}: {self.detail}" if self.detail else head


@dataclass(frozen=True)
class Source:
    """Where a claim reads its numbers: our per-seed values, or the paper's single value (``exact``)."""

    name: str
    exact: bool  # compare the (mean) values as they are, without intervals
    paper: bool = False  # read the paper's number instead of ours

    def get(self, row: Row, column: str) -> dict[int, float]:
        cell = row.cells.get(column)
        if cell is None:
            return {}
        if self.paper:
            return {} if cell.paper is None else {0: cell.paper}
        return dict(cell.values) if row.status == "ok" else {}


OURS = Source("ours", exact=False)
OURS_MEANS = Source("ours, means only", exact=True)  # what an inconclusive verdict's means say
PAPER = Source("paper", exact=True, paper=True)


def in_gmf_family(row: Row) -> bool:
    """GMF itself, its variants (GMF-MAE, GMF at initialisation) and the G-<x> front-end fusers."""
    f = row.fuser
    return f.startswith("gmf") or f.startswith("g_")


def _name(row: Row) -> str:
    return row.label.split(" [")[0]


def _decimals(table: Table, column: str) -> int:
    return next((c.decimals for c in table.spec.columns if c.name == column), 2)


def _mean(values: dict[int, float]) -> float | None:
    return sum(values.values()) / len(values) if values else None


def _average(*series: dict[int, float]) -> dict[int, float]:
    """Per-seed mean of several series, on the seeds they all have."""
    seeds = set.intersection(*(set(s) for s in series)) if series else set()
    return {k: sum(s[k] for s in series) / len(series) for k in sorted(seeds)}


def _value(values: dict[int, float], d: int, exact: bool) -> str:
    return fmt_stat(t_interval(list(values.values())), d, exact=exact)


def _diff(stat: Stat | None, d: int, exact: bool) -> str:
    if stat is None:
        return "-"
    if exact:
        return f"{stat.mean:+.{d}f}"
    if stat.low is None:
        return f"{stat.mean:+.{d}f} (n=1, no interval)"
    return f"{stat.mean:+.{d}f}, 95% CI {fmt_interval(stat, d)} (n={stat.n}, paired)"


def _all(parts: Sequence[str]) -> str:
    """A conjunction: yes when every part is, no when any part is, else inconclusive."""
    if not parts or all(p == "not testable" for p in parts):
        return "not testable"
    if "no" in parts:
        return "no"
    return "yes" if all(p == "yes" for p in parts) else "inconclusive"


def _combine(parts: list[str]) -> str:
    """Several GMF rows or columns: one verdict when they agree, "mixed" when yes and no meet."""
    if not parts:
        return "not testable"
    kinds = set(parts)
    if len(kinds) == 1:
        return parts[0]
    if "no" in kinds:
        return "mixed" if "yes" in kinds or "mixed" in kinds else "no"
    return "inconclusive" if "inconclusive" in kinds else "mixed"


_RANK = {"no": 0, "inconclusive": 1, "not testable": 2, "yes": 3}


def _n(diffs: Sequence[dict[int, float]], exact: bool) -> int | None:
    return None if exact else min((len(d) for d in diffs), default=0)


def _shift(diff: dict[int, float], by: float, sign: float = 1.0) -> dict[int, float]:
    return {s: sign * v + by for s, v in diff.items()}


# ------------------------------------------------------------------ claim 1
def _cost(src: Source, row: Row, column: str) -> float | None:
    value = _mean(src.get(row, column))
    if value is None and src.paper and row.cells.get(column) is not None:
        return 0.0  # "-" in the paper's Params/FLOPs: a method without fusion parameters (concat, CLIP)
    return value


def _params(value: float) -> str:
    return "0 (no fusion parameters)" if value == 0 else f"{value:.3g}M"


def claim1(table: Table, src: Source) -> Verdict:
    """For every non-GMF fuser x: GMF close to x on the main column, and cheaper than x unless x is clearly worse."""
    main, tol = table.spec.main, table.spec.tolerance
    d = _decimals(table, main)
    names = {c.name for c in table.spec.columns}
    gmf_rows = [r for r in table.rows if r.fuser == "gmf" and src.get(r, main)]
    others = [r for r in table.rows if not in_gmf_family(r) and src.get(r, main)]
    if not gmf_rows or not others:
        return Verdict(1, "not testable", f"needs GMF and at least one other fuser with {main}")
    if "Params (M)" not in names:
        return Verdict(1, "not testable", "this table has no params column")
    verdicts, details, used = [], [], []
    for g in gmf_rows:
        closes, costs = [], []
        gp, gf = _cost(src, g, "Params (M)"), _cost(src, g, "FLOPs (G)")
        for i, x in enumerate(others):
            diff = paired(src.get(g, main), src.get(x, main))  # GMF - x
            used.append(diff)
            close, stat = decide(_shift(diff, tol), src.exact)  # GMF - x >= -tol
            closes.append((_RANK[close], stat.mean if stat else 0.0, i, x, close, diff))
            xp, xf = _cost(src, x, "Params (M)"), _cost(src, x, "FLOPs (G)")
            if gp is None or xp is None:
                costs.append((_RANK["not testable"], i, x, "not testable", "params not recorded"))
                continue
            cheaper = gp < xp and (gf is None or xf is None or gf <= xf)
            text = f"params {_params(gp)} vs {_name(x)} {_params(xp)}" + (f" ({100 * gp / xp:.3g}%)" if xp else "")
            if gf is not None and xf is not None:
                text += f", FLOPs {gf:.3g}G vs {xf:.3g}G"
            if cheaper:
                costs.append((_RANK["yes"], i, x, "yes", text))
                continue
            rival, _ = decide(_shift(diff, tol, -1.0), src.exact)  # x - GMF >= -tol: x as good as GMF
            cost = {"yes": "no", "no": "yes"}.get(rival, "inconclusive")
            why = {"no": f"; {_name(x)} is at least as accurate (GMF - it <= {tol:g}) and GMF is not cheaper",
                   "yes": f"; GMF is not cheaper, but {_name(x)} is clearly less accurate (GMF - it > {tol:g})",
                   "inconclusive": f"; GMF is not cheaper, and whether {_name(x)} is at least as accurate "
                                   f"(GMF - it <= {tol:g}) is not decided"}[cost]
            costs.append((_RANK[cost], i, x, cost, text + why))
        close = _all([c[4] for c in closes])
        cost = _all([c[3] for c in costs])
        best = max(others, key=lambda r: _mean(src.get(r, main)))
        _, _, _, x, _, diff = min(closes)  # the comparison that decides: a "no" first, else the largest gap
        text = (f"{_name(g)} {main} {_value(src.get(g, main), d, src.exact)} vs best {_name(best)} "
                f"{_value(src.get(best, main), d, src.exact)}; GMF - {_name(x)} "
                f"{_diff(t_interval(list(diff.values())), d, src.exact)}, close if >= -{tol:g}")
        deciding = min(costs, key=lambda c: (c[0], c[2] is not best, c[1]))  # a "no" first, else the best fuser's
        text += "".join(f"; {c[4]}" for c in costs if c is deciding or (c[2] is best and c[0] > deciding[0]))
        verdicts.append(_all([close, cost]))
        details.append(text)
    return Verdict(1, _combine(verdicts), "; ".join(details), _n(used, src.exact))


# ------------------------------------------------------------------ claim 2
def claim2(table: Table, src: Source) -> Verdict:
    """GMF's drop from the main column to each column with one modality missing smaller than every non-GMF
    fuser's (paired per seed)."""
    main, missing = table.spec.main, table.spec.missing
    if not missing:
        return Verdict(2, "not testable", "this table has no column with one modality missing")
    gmf_rows = [r for r in table.rows if r.fuser == "gmf" and src.get(r, main)]
    if not gmf_rows:
        return Verdict(2, "not testable", f"no GMF run with {main}")
    verdicts, details, used = [], [], []
    for gmf in gmf_rows:
        verdict, detail = _claim2_row(table, src, gmf, used)
        verdicts.append(verdict)
        details.append(detail)
    return Verdict(2, _combine(verdicts), _per_row(gmf_rows, details), _n(used, src.exact))


def _per_row(rows: list[Row], details: list[str]) -> str:
    """One text when every GMF row says the same, else each prefixed by its row's name."""
    if len(set(details)) <= 1:
        return details[0] if details else ""
    return "; ".join(f"{_name(r)}: {d}" for r, d in zip(rows, details, strict=True))


def _claim2_row(table: Table, src: Source, gmf: Row, used: list[dict[int, float]]) -> tuple[str, str]:
    main, missing = table.spec.main, table.spec.missing or ()
    verdicts, details = [], []
    for col in missing:
        gmf_drop = paired(src.get(gmf, main), src.get(gmf, col))
        if not gmf_drop:
            verdicts.append("not testable")
            details.append(f"GMF has no {col}")
            continue
        comps = []
        for i, x in enumerate(table.rows):
            x_drop = paired(src.get(x, main), src.get(x, col))
            if in_gmf_family(x) or not x_drop:
                continue
            diff = paired(x_drop, gmf_drop)  # > 0: GMF loses less
            verdict, stat = decide(diff, src.exact)
            comps.append((_RANK[verdict], stat.mean if stat else 0.0, i, x, verdict, diff, x_drop))
            used.append(diff)
        if not comps:
            verdicts.append("not testable")
            details.append(f"no other fuser with {main} and {col}")
            continue
        verdicts.append(_all([c[4] for c in comps]))
        _, _, _, x, _, diff, x_drop = min(comps)  # a "no" first, else the closest competitor
        details.append(f"{main}->{col} drop: GMF {_value(gmf_drop, 2, src.exact)} vs {_name(x)} "
                       f"{_value(x_drop, 2, src.exact)}; {_name(x)} - GMF "
                       f"{_diff(t_interval(list(diff.values())), 2, src.exact)}")
    return _combine(verdicts), "; ".join(details)


# ------------------------------------------------------------------ claim 3
def claim3(table: Table, src: Source) -> Verdict:
    """Each G-<x> above <x> on the main column and on the mean of the missing-modality columns (paired)."""
    main = table.spec.main
    d = _decimals(table, main)
    verdicts, details, used = [], [], []
    for g in table.rows:
        f = g.fuser
        if not f.startswith("g_"):
            continue
        base = _partner(g, [r for r in table.rows if r.base == g.base.replace(f, f[2:], 1)])
        if base is None or not src.get(g, main) or not src.get(base, main):
            continue
        raise_av = paired(src.get(g, main), src.get(base, main))
        parts = [decide(raise_av, src.exact)[0]]
        used.append(raise_av)
        text = (f"{_name(g)} {main} {_value(src.get(g, main), d, src.exact)} vs {_name(base)} "
                f"{_value(src.get(base, main), d, src.exact)}: "
                f"{_diff(t_interval(list(raise_av.values())), d, src.exact)}")
        if table.spec.missing:
            g_mean = _average(*(src.get(g, c) for c in table.spec.missing))
            b_mean = _average(*(src.get(base, c) for c in table.spec.missing))
            if g_mean and b_mean:
                robust = paired(g_mean, b_mean)
                parts.append(decide(robust, src.exact)[0])
                used.append(robust)
                text += (f"; mean of {'/'.join(table.spec.missing)} {_value(g_mean, 2, src.exact)} vs "
                         f"{_value(b_mean, 2, src.exact)}: {_diff(t_interval(list(robust.values())), 2, src.exact)}")
            else:
                text += f", robustness not testable (no {'/'.join(table.spec.missing)})"
        else:
            text += ", robustness not testable (no column with one modality missing)"
        verdicts.append(_all(parts))
        details.append(text)
    if not verdicts:
        return Verdict(3, "not testable", "needs a G-<x> run and its back-end <x> run")
    return Verdict(3, _combine(verdicts), "; ".join(details), _n(used, src.exact))


# ------------------------------------------------------------------ claim 4
def _partner(row: Row, candidates: list[Row]) -> Row | None:
    """The candidate row of the same setting variant (``n=2`` with ``n=2``), else the only candidate."""
    same = [c for c in candidates if c.variant == row.variant]
    return same[0] if len(same) == 1 else (candidates[0] if len(candidates) == 1 else None)


def _mi_series(row: Row, key: str) -> dict[int, float]:
    """results['analysis']['mutual_information'][key] per seed over the row's ok runs."""
    by_seed: dict[int, list[float]] = {}
    for res in row.results:
        value = ((res.get("analysis") or {}).get("mutual_information") or {}).get(key)
        if is_ok(res) and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            by_seed.setdefault(seed_of(res), []).append(float(value))
    return {s: sum(v) / len(v) for s, v in sorted(by_seed.items())}


def _ce_series(table: Table, row: Row) -> dict[int, float]:
    """Test cross-entropy (metrics[<main condition>]["ce"], nats) per seed over the row's ok runs."""
    main = next(c for c in table.spec.columns if c.name == table.spec.main)
    return per_seed([r for r in row.results if is_ok(r)], replace(main, metrics=("ce",), scale=1.0, minus=()))


def _untie(diff: dict[int, float]) -> dict[int, float]:
    return {s: 0.0 if abs(v) < TIE else v for s, v in diff.items()}


def _part(name: str, reference: dict[int, float], gmf: dict[int, float], src: Source, why: str,
          text: str) -> tuple[str, str, dict[int, float] | None]:
    """A part of claim 4: ``reference - gmf`` per seed, yes when above 0 (strictly: a tie is no reduction); not
    testable, saying ``why``, when either series is empty."""
    if not reference or not gmf:
        return "not testable", f"{name} not testable: {why}", None
    diff = paired(reference, gmf) if src is OURS else {0: _mean(reference) - _mean(gmf)}
    verdict, stat = decide(_untie(diff), src.exact)
    if src.exact and stat is not None:
        verdict = "yes" if stat.mean > TIE else "no"
    return verdict, f"{name} {verdict}: {text} {_diff(stat, 3, src.exact)}", diff


def claim4(table: Table, src: Source) -> Verdict:
    """MI between GMF's exchanged parts lower after training than at initialisation (same seed), and GMF's
    test cross-entropy lower than concat's (same seed); both must hold."""
    if src.paper:
        return Verdict(4, "not testable", "the paper reports no mutual-information or entropy numbers")
    gmf_rows = [r for r in table.rows if r.fuser == "gmf" and r.base != INIT_ROW and r.status == "ok"]
    if not gmf_rows:
        return Verdict(4, "not testable", "no GMF run")
    inits = [r for r in table.rows if r.base == INIT_ROW and r.status == "ok"]
    concats = [r for r in table.rows if r.base == "concat" and r.status == "ok"]
    verdicts, details, used = [], [], []
    for g in gmf_rows:
        init, concat = _partner(g, inits), _partner(g, concats)
        trained = _mi_series(g, "exchanged")
        start = _mi_series(init, "exchanged") if init is not None else {}
        ce_g = _ce_series(table, g)
        ce_c = _ce_series(table, concat) if concat is not None else {}
        halves = [
            _part("MI", start, trained, src,
                  "no run of GMF at initialisation (conf/claims_row/gmf_init.yaml) with its seeds" if init is None
                  else "no analysis.mutual_information in the runs (eval.mutual_information=true)",
                  f"MI(inv_j+1; spec_j) after training {_value(trained, 3, False)} nats vs at initialisation "
                  f"{_value(start, 3, False)}; initialisation - trained"),
            _part("entropy", ce_c, ce_g, src,
                  "no concat run" if concat is None else f"no test cross-entropy ({table.spec.main} ce) recorded",
                  f"test cross-entropy GMF {_value(ce_g, 3, False)} nats vs "
                  f"{_name(concat) if concat is not None else 'concat'} {_value(ce_c, 3, False)}; concat - GMF"),
        ]
        parts = [verdict for verdict, _, _ in halves]
        texts = [text for _, text, _ in halves]
        used += [diff for _, _, diff in halves if diff is not None]
        verdicts.append(_all(parts))
        details.append("; ".join(texts))
    return Verdict(4, _combine(verdicts), _per_row(gmf_rows, details), _n(used, False) if used else None)


# ------------------------------------------------------------------ all four
CHECKS = {1: claim1, 2: claim2, 3: claim3, 4: claim4}


def _paper(n: int, table: Table) -> Verdict:
    spec = TABLES.get(table.spec.name)
    if spec is None or not spec.paper_rows:
        return Verdict(n, "not testable", "the paper has no table for these runs")
    return CHECKS[n](paper_table(spec.name), PAPER)


def check_claims(table: Table) -> list[dict[str, Any]]:
    """Each claim answered on our runs and, from the paper's whole table, on the paper's numbers."""
    out = []
    for n, fn in CHECKS.items():
        ours = fn(table, OURS)
        if ours.verdict == "inconclusive":
            means = fn(table, OURS_MEANS).verdict
            ours.means_say = means if means in ("yes", "no", "mixed") else None
        out.append({"claim": n, "text": CLAIMS[n], "ours": ours, "paper": _paper(n, table)})
    return out


def claims_text(table: Table, markdown: bool = False) -> str:
    checked = check_claims(table)
    papers = {str(c["paper"]) for c in checked}
    apart = len(papers) == 1 and "the paper has no table" in next(iter(papers))
    lines = [f"The paper's claims on {table.name}, main column {table.spec.main}; {RULE}"
             + ("; the paper has no table for these runs:" if apart else ":")]
    for c in checked:
        bullet = "- " if markdown else "  "
        lines.append(f"{bullet}{c['claim']}. {c['text']}: {c['ours']}")
        if not apart:
            lines.append(f"{'  ' if markdown else '     '}paper's own numbers: {c['paper']}")
    return "\n".join(lines)
