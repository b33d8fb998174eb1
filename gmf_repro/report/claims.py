"""The four claims of SPEC §6, answered from per-seed numbers (ours) and from the paper's own table.

Our verdicts are computed on the per-seed values, never on means alone: every comparison of two
fusers is paired (same seed = same data draw and initialisation seed), and a verdict is "yes" or "no"
only when the 95% t-interval of the paired difference lies entirely on one side of the threshold;
otherwise it is "inconclusive", always with n and the numbers behind it. One seed has no interval,
so a single-seed claim is "inconclusive (n=1)" with its point estimate (claim 4 then uses the MI
estimate's bootstrap interval over test samples). The paper's numbers are single values and are
compared as they are. "mixed": holds for some GMF rows or back-ends and not others; "not testable":
the runs lack what the claim needs.

Comparison sets: claims 1 and 2 compare GMF with every fuser outside the GMF family (G-* front-end
variants and GMF-MAE are GMF, so they are left out); claim 3 pairs each ``g_<x>`` with ``<x>``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .aggregate import Row, Table, is_ok, seed_of
from .stats import INTERVAL, Stat, decide, fmt_interval, fmt_stat, paired, t_interval

CLAIMS: dict[int, str] = {
    1: "GMF is close to the best fusers on AV with a fraction of their parameters and FLOPs",
    2: "GMF loses the least accuracy when one modality is missing",
    3: "GMF as a front-end (G-MBT, G-Perceiver) raises the back-end's AV score and its robustness",
    4: "GMF's exchange reduces mutual information between the fused parts",
}
RULE = (f"yes/no only when the {INTERVAL} of the paired difference (same seed) excludes the threshold, "
        f"else inconclusive; n = seeds")


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
        cell = row.cells[column]
        if self.paper:
            return {} if cell.paper is None else {0: cell.paper}
        return dict(cell.values) if row.status == "ok" else {}


OURS = Source("ours", exact=False)
OURS_MEANS = Source("ours, means only", exact=True)  # what an inconclusive verdict's means say
PAPER = Source("paper", exact=True, paper=True)


def in_gmf_family(row: Row) -> bool:
    f = row.fuser
    return f in ("gmf", "gmf_mae") or f.startswith("g_")


def _name(row: Row) -> str:
    return row.label.split(" [")[0]


def _ratio(a: float, b: float) -> str:
    return f"{100 * a / b:.3g}%" if b else "n/a (0)"


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
    """Several GMF rows or back-ends: one verdict when they agree, "mixed" when yes and no meet."""
    if not parts:
        return "not testable"
    kinds = set(parts)
    if len(kinds) == 1:
        return parts[0]
    if "no" in kinds:
        return "mixed"
    return "inconclusive" if "inconclusive" in kinds else "mixed"


_RANK = {"no": 0, "inconclusive": 1, "not testable": 2, "yes": 3}


def _n(diffs: Sequence[dict[int, float]], exact: bool) -> int | None:
    return None if exact else min((len(d) for d in diffs), default=0)


def claim1(table: Table, src: Source) -> Verdict:
    """Every non-GMF fuser at most ``tolerance`` above GMF on the main column, and GMF smaller than the best."""
    main, tol = table.spec.main, table.spec.tolerance
    d = _decimals(table, main)
    has_params = any(c.name == "Params (M)" for c in table.spec.columns)
    gmf_rows = [r for r in table.rows if r.fuser == "gmf" and src.get(r, main)]
    others = [r for r in table.rows if not in_gmf_family(r) and src.get(r, main)]
    if not gmf_rows or not others:
        return Verdict(1, "not testable", f"needs GMF and at least one other fuser with {main}")
    verdicts, details, used = [], [], []
    for g in gmf_rows:
        comps = []
        for i, x in enumerate(others):
            diff = paired(src.get(g, main), src.get(x, main))  # GMF - x; close when >= -tol
            verdict, stat = decide({s: v + tol for s, v in diff.items()}, src.exact)
            comps.append((_RANK[verdict], stat.mean if stat else 0.0, i, x, verdict, diff))
            used.append(diff)
        close = _all([c[4] for c in comps])
        best = max(others, key=lambda r: _mean(src.get(r, main)))
        x, diff = min(comps)[3::2]  # the comparison that decides: a "no" first, else the largest gap
        text = (f"{_name(g)} {main} {_value(src.get(g, main), d, src.exact)} vs best {_name(best)} "
                f"{_value(src.get(best, main), d, src.exact)}; GMF - {_name(x)} "
                f"{_diff(t_interval(list(diff.values())), d, src.exact)}, close if >= -{tol:g}")
        if close == "no" or not has_params:
            verdicts.append(close if has_params else "not testable")
            details.append(text + ("" if has_params else "; this table has no params column"))
            continue
        gp, bp = _mean(src.get(g, "Params (M)")), _mean(src.get(best, "Params (M)"))
        gf, bf = _mean(src.get(g, "FLOPs (G)")), _mean(src.get(best, "FLOPs (G)"))
        if best.fuser == "concat":  # the paper prints "-": concatenation has no fusion parameters
            bp, bf = (0.0 if bp is None else bp), (0.0 if bf is None else bf)
        if gp is None or bp is None:
            verdicts.append("not testable")
            details.append(text + "; params not recorded")
            continue
        smaller = gp < bp and (gf is None or bf is None or gf <= bf)
        text += f"; params {gp:.2f}M = {_ratio(gp, bp)} of {bp:.2f}M"
        if gf is not None and bf is not None:
            text += f", FLOPs {gf:.3g}G = {_ratio(gf, bf)} of {bf:.3g}G"
        verdicts.append(_all([close, "yes" if smaller else "no"]))
        details.append(text)
    return Verdict(1, _combine(verdicts), "; ".join(details), _n(used, src.exact))


def claim2(table: Table, src: Source) -> Verdict:
    """GMF's AV->A and AV->V drops smaller than every non-GMF fuser's (paired per seed)."""
    if table.spec.missing is None:
        return Verdict(2, "not testable", "this table has no missing-modality columns")
    main, (col_a, col_v) = table.spec.main, table.spec.missing
    gmf = next((r for r in table.rows if r.fuser == "gmf" and src.get(r, main)), None)
    if gmf is None:
        return Verdict(2, "not testable", f"no GMF run with {main}")
    verdicts, details, used = [], [], []
    for col, letter in ((col_a, "A"), (col_v, "V")):
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
        details.append(f"AV->{letter} drop: GMF {_value(gmf_drop, 2, src.exact)} vs {_name(x)} "
                       f"{_value(x_drop, 2, src.exact)}; {_name(x)} - GMF "
                       f"{_diff(t_interval(list(diff.values())), 2, src.exact)}")
    return Verdict(2, _combine(verdicts), "; ".join(details), _n(used, src.exact))


def claim3(table: Table, src: Source) -> Verdict:
    """Each G-<x> above <x> on the main column and on the mean of the missing-modality columns (paired)."""
    main = table.spec.main
    d = _decimals(table, main)
    by_key = {r.key: r for r in table.rows}
    verdicts, details, used = [], [], []
    for g in table.rows:
        f = g.fuser
        if not f.startswith("g_"):
            continue
        base = by_key.get(g.key.replace(f, f[2:], 1))
        if base is None or not src.get(g, main) or not src.get(base, main):
            continue
        raise_av = paired(src.get(g, main), src.get(base, main))
        parts = [decide(raise_av, src.exact)[0]]
        used.append(raise_av)
        text = (f"{_name(g)} {main} {_value(src.get(g, main), d, src.exact)} vs {_name(base)} "
                f"{_value(src.get(base, main), d, src.exact)}: "
                f"{_diff(t_interval(list(raise_av.values())), d, src.exact)}")
        if table.spec.missing is not None:
            g_mean = _average(*(src.get(g, c) for c in table.spec.missing))
            b_mean = _average(*(src.get(base, c) for c in table.spec.missing))
            if g_mean and b_mean:
                robust = paired(g_mean, b_mean)
                parts.append(decide(robust, src.exact)[0])
                used.append(robust)
                text += (f"; mean of A/V {_value(g_mean, 2, src.exact)} vs {_value(b_mean, 2, src.exact)}: "
                         f"{_diff(t_interval(list(robust.values())), 2, src.exact)}")
            else:
                text += ", robustness not testable (no A/V)"
        else:
            text += ", robustness not testable (no A/V columns)"
        verdicts.append(_all(parts))
        details.append(text)
    if not verdicts:
        return Verdict(3, "not testable", "needs a G-<x> run and its back-end <x> run")
    return Verdict(3, _combine(verdicts), "; ".join(details), _n(used, src.exact))


def _mi_series(rows: list[Row], key: str) -> dict[int, float]:
    """results['analysis']['mutual_information'][key] per seed over the rows' ok runs."""
    by_seed: dict[int, list[float]] = {}
    for row in rows:
        for res in row.results:
            value = ((res.get("analysis") or {}).get("mutual_information") or {}).get(key)
            if is_ok(res) and isinstance(value, int | float) and not isinstance(value, bool):
                by_seed.setdefault(seed_of(res), []).append(float(value))
    return {s: sum(v) / len(v) for s, v in sorted(by_seed.items())}


def _bootstrap(rows: list[Row], key: str) -> list[float] | None:
    for row in rows:
        for res in row.results:
            ci = ((res.get("analysis") or {}).get("mutual_information") or {}).get("ci95") or {}
            if is_ok(res) and isinstance(ci.get(key), list) and len(ci[key]) == 2:
                return [float(v) for v in ci[key]]
    return None


def claim4(table: Table) -> Verdict:
    """MI between the two blocks GMF concatenates (inv_{j+1}, spec_j) below MI between the raw inputs.

    Without the raw inputs' MI in results.json, the reference is the same parts without the exchange,
    MI(inv_j; spec_j), and the text says so. Over seeds: a t-interval of the per-seed difference; one
    seed: the run's bootstrap interval over test samples (``analysis.mutual_information.ci95``).
    """
    gmf = [r for r in table.rows if r.fuser == "gmf"]
    exchanged = _mi_series(gmf, "exchanged")
    inputs, unexchanged = _mi_series(gmf, "inputs"), _mi_series(gmf, "unexchanged")
    if not exchanged or not (inputs or unexchanged):
        return Verdict(4, "not testable", "no GMF run with analysis.mutual_information (exchanged, inputs)")
    ref_key = "inputs" if inputs else "unexchanged"
    ref = inputs or unexchanged
    ref_text = ("MI between the raw inputs" if inputs
                else "without the exchange, MI(inv_j; spec_j) (raw-input MI not recorded)")
    diff = paired(ref, exchanged)  # > 0: the exchange lowers MI
    verdict, stat = decide(diff)
    text = (f"MI(inv_j+1; spec_j) {fmt_stat(t_interval(list(exchanged.values())), 3)} nats vs {ref_text} "
            f"{fmt_stat(t_interval(list(ref.values())), 3)} nats; {ref_key} - exchanged {_diff(stat, 3, False)}")
    if inputs and unexchanged:
        text += f" (without the exchange, MI(inv_j; spec_j) {fmt_stat(t_interval(list(unexchanged.values())), 3)})"
    boot = _bootstrap(gmf, f"{ref_key}-exchanged") if len(diff) == 1 else None
    if boot is not None:
        lo, hi = boot
        verdict = "yes" if lo > 0 else ("no" if hi < 0 else "inconclusive")
        text += f"; n=1, so from the run's 95% bootstrap interval over test samples [{lo:+.3f}, {hi:+.3f}]"
    concat = _mi_series([r for r in table.rows if r.fuser == "concat"], "inputs")
    if concat:
        text += f"; concat runs' inputs {fmt_stat(t_interval(list(concat.values())), 3)}"
    means_say = ("yes" if stat.mean > 0 else "no") if verdict == "inconclusive" and stat is not None else None
    return Verdict(4, verdict, text, len(diff), means_say)


def check_claims(table: Table) -> list[dict[str, Any]]:
    """Each claim answered on our runs and, for the same rows, on the paper's numbers."""
    out = []
    for n, fn in ((1, claim1), (2, claim2), (3, claim3)):
        ours = fn(table, OURS)
        if ours.verdict == "inconclusive":
            ours.means_say = fn(table, OURS_MEANS).verdict
        out.append({"claim": n, "text": CLAIMS[n], "ours": ours, "paper": fn(table, PAPER)})
    out.append({"claim": 4, "text": CLAIMS[4], "ours": claim4(table),
                "paper": Verdict(4, "not testable", "the paper reports no MI numbers")})
    return out


def claims_text(table: Table, markdown: bool = False) -> str:
    lines = [f"Claims (SPEC §6) on {table.spec.name}, main column {table.spec.main}; {RULE}:"]
    for c in check_claims(table):
        bullet = "- " if markdown else "  "
        lines.append(f"{bullet}{c['claim']}. {c['text']}: {c['ours']}")
        lines.append(f"{'  ' if markdown else '     '}paper's own numbers: {c['paper']}")
    return "\n".join(lines)
