"""The four claims of SPEC §6, answered from the numbers in a table (ours, and the paper's own).

Verdicts are "yes", "no", "mixed" (holds for some GMF rows / back-ends but not all) or
"not testable" (the runs given lack what the claim needs). Comparison sets: claims 1 and 2 compare
GMF with every fuser outside the GMF family (G-* front-end variants and GMF-MAE are GMF, so they
are left out); claim 3 pairs each ``g_<x>`` with its back-end ``<x>``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .tables import Row, Table

CLAIMS: dict[int, str] = {
    1: "GMF is close to the best fusers on AV with a fraction of their parameters and FLOPs",
    2: "GMF loses the least accuracy when one modality is missing",
    3: "GMF as a front-end (G-MBT, G-Perceiver) raises the back-end's AV score and its robustness",
    4: "GMF's exchange reduces mutual information between the fused parts",
}


@dataclass
class Verdict:
    claim: int
    verdict: str  # "yes" | "no" | "mixed" | "not testable"
    detail: str

    def __str__(self) -> str:
        return f"{self.verdict}: {self.detail}" if self.detail else self.verdict


Values = Callable[[Row, str], "float | None"]


def ours(row: Row, column: str) -> float | None:
    return row.cells[column].ours if row.status == "ok" else None


def paper_value(row: Row, column: str) -> float | None:
    return row.cells[column].paper


def _fuser(row: Row) -> str:
    return row.key.split("@")[0]


def in_gmf_family(row: Row) -> bool:
    f = _fuser(row)
    return f in ("gmf", "gmf_mae") or f.startswith("g_")


def _combine(parts: list[str]) -> str:
    if not parts:
        return "not testable"
    if "not testable" in parts:
        return "not testable" if all(p == "not testable" for p in parts) else "mixed"
    if all(p == "yes" for p in parts):
        return "yes"
    return "no" if all(p == "no" for p in parts) else "mixed"


def _name(row: Row) -> str:
    return row.label.split(" [")[0]


def _ratio(a: float, b: float) -> str:
    return f"{100 * a / b:.3g}%" if b else "n/a (0)"


def _decimals(table: Table, column: str) -> int:
    return next((c.decimals for c in table.spec.columns if c.name == column), 2)


def claim1(table: Table, value: Values) -> Verdict:
    """Gap to the best non-GMF fuser on the main column <= tolerance, and fewer params (and FLOPs) than it."""
    main, tol = table.spec.main, table.spec.tolerance
    has_params = any(c.name == "Params (M)" for c in table.spec.columns)
    gmf_rows = [r for r in table.rows if _fuser(r) == "gmf" and value(r, main) is not None]
    others = [r for r in table.rows if not in_gmf_family(r) and value(r, main) is not None]
    if not gmf_rows or not others:
        return Verdict(1, "not testable", f"needs GMF and at least one other fuser with {main}")
    verdicts, details = [], []
    d = _decimals(table, main)
    for g in gmf_rows:
        best = max(others, key=lambda r: value(r, main))
        gap = value(best, main) - value(g, main)
        close = gap <= tol + 1e-12
        text = (f"{_name(g)} {main} {value(g, main):.{d}f} vs best {_name(best)} {value(best, main):.{d}f} "
                f"(gap {gap:+.{d}f}, {'<=' if close else '>'} {tol:g})")
        if not close:
            verdicts.append("no")
        elif not has_params:
            verdicts.append("not testable")
            text += "; this table has no params column"
        else:
            gp, bp = value(g, "Params (M)"), value(best, "Params (M)")
            gf, bf = value(g, "FLOPs (G)"), value(best, "FLOPs (G)")
            if _fuser(best) == "concat":  # the paper prints "-": concatenation has no fusion parameters
                bp, bf = (0.0 if bp is None else bp), (0.0 if bf is None else bf)
            if gp is None or bp is None:
                verdicts.append("not testable")
                text += "; params not recorded"
            else:
                smaller = gp < bp and (gf is None or bf is None or gf <= bf)
                text += f"; params {gp:.2f}M = {_ratio(gp, bp)} of {bp:.2f}M"
                if gf is not None and bf is not None:
                    text += f", FLOPs {gf:.3g}G = {_ratio(gf, bf)} of {bf:.3g}G"
                verdicts.append("yes" if smaller else "no")
        details.append(text)
    return Verdict(1, _combine(verdicts), "; ".join(details))


def claim2(table: Table, value: Values) -> Verdict:
    """GMF's AV->A and AV->V drops are the smallest among the non-GMF fusers."""
    if table.spec.missing is None:
        return Verdict(2, "not testable", "this table has no missing-modality columns")
    main, (col_a, col_v) = table.spec.main, table.spec.missing
    gmf = next((r for r in table.rows if _fuser(r) == "gmf" and value(r, main) is not None), None)
    if gmf is None:
        return Verdict(2, "not testable", f"no GMF run with {main}")
    verdicts, details = [], []
    for col, letter in ((col_a, "A"), (col_v, "V")):
        if value(gmf, col) is None:
            verdicts.append("not testable")
            details.append(f"GMF has no {col}")
            continue
        drop = value(gmf, main) - value(gmf, col)
        others = [(value(r, main) - value(r, col), r) for r in table.rows
                  if not in_gmf_family(r) and value(r, main) is not None and value(r, col) is not None]
        if not others:
            verdicts.append("not testable")
            details.append(f"no other fuser with {main} and {col}")
            continue
        best_drop, best = min(others, key=lambda t: t[0])
        smallest = drop <= best_drop + 1e-12
        verdicts.append("yes" if smallest else "no")
        details.append(f"AV->{letter} drop: GMF {drop:.2f} vs {'next' if smallest else 'smallest'} "
                       f"{_name(best)} {best_drop:.2f}")
    return Verdict(2, _combine(verdicts), "; ".join(details))


def claim3(table: Table, value: Values) -> Verdict:
    """Each G-<x> beats <x> on the main column and on the mean of the missing-modality columns."""
    main = table.spec.main
    by_key = {r.key: r for r in table.rows}
    verdicts, details = [], []
    for g in table.rows:
        f = _fuser(g)
        if not f.startswith("g_"):
            continue
        base = by_key.get(g.key.replace(f, f[2:], 1))
        if base is None or value(g, main) is None or value(base, main) is None:
            continue
        raise_av = value(g, main) - value(base, main)
        d = _decimals(table, main)
        text = (f"{_name(g)} {main} {value(g, main):.{d}f} vs {_name(base)} {value(base, main):.{d}f} "
                f"({raise_av:+.{d}f})")
        ok = raise_av > 0
        if table.spec.missing is not None:
            cols = table.spec.missing
            gv, bv = [value(g, c) for c in cols], [value(base, c) for c in cols]
            if None not in gv and None not in bv:
                g_mean, b_mean = sum(gv) / 2, sum(bv) / 2
                text += f", mean of A/V {g_mean:.2f} vs {b_mean:.2f} ({g_mean - b_mean:+.2f})"
                ok = ok and g_mean > b_mean
            else:
                text += ", robustness not testable (no A/V)"
        else:
            text += ", robustness not testable (no A/V columns)"
        verdicts.append("yes" if ok else "no")
        details.append(text)
    if not verdicts:
        return Verdict(3, "not testable", "needs a G-<x> run and its back-end <x> run")
    return Verdict(3, _combine(verdicts), "; ".join(details))


def _mi(rows: list[Row]) -> dict[str, float]:
    """Mean of each numeric results['analysis']['mutual_information'] entry over the rows' ok runs."""
    sums: dict[str, list[float]] = {}
    for row in rows:
        for res in row.results:
            if res.get("status", "ok") != "ok":
                continue
            mi = (res.get("analysis") or {}).get("mutual_information") or {}
            for k, v in mi.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    sums.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def claim4(table: Table) -> Verdict:
    """MI between the two blocks GMF concatenates (inv_{j+1}, spec_j) < MI between the raw inputs.

    Without the raw inputs' MI in results.json, the reference is the same parts without the exchange,
    MI(inv_j; spec_j), and the text says so.
    """
    gmf = _mi([r for r in table.rows if _fuser(r) == "gmf"])
    if "exchanged" not in gmf or not ({"inputs", "unexchanged"} & set(gmf)):
        return Verdict(4, "not testable", "no GMF run with analysis.mutual_information (exchanged, inputs)")
    if "inputs" in gmf:
        verdict = "yes" if gmf["exchanged"] < gmf["inputs"] else "no"
        text = (f"MI(inv_j+1; spec_j) {gmf['exchanged']:.3f} nats vs MI between the raw inputs "
                f"{gmf['inputs']:.3f} nats")
        if "unexchanged" in gmf:
            text += f" (without the exchange, MI(inv_j; spec_j) {gmf['unexchanged']:.3f})"
    else:
        verdict = "yes" if gmf["exchanged"] < gmf["unexchanged"] else "no"
        text = (f"MI(inv_j+1; spec_j) {gmf['exchanged']:.3f} nats vs {gmf['unexchanged']:.3f} without the "
                f"exchange, MI(inv_j; spec_j) (raw-input MI not recorded)")
    concat = _mi([r for r in table.rows if _fuser(r) == "concat"])
    if "inputs" in concat:
        text += f"; concat run's inputs {concat['inputs']:.3f}"
    return Verdict(4, verdict, text)


def check_claims(table: Table) -> list[dict[str, Any]]:
    """Each claim answered on our runs and, for the same rows, on the paper's numbers."""
    out = []
    for n, fn in ((1, claim1), (2, claim2), (3, claim3)):
        out.append({"claim": n, "text": CLAIMS[n], "ours": fn(table, ours), "paper": fn(table, paper_value)})
    out.append({"claim": 4, "text": CLAIMS[4], "ours": claim4(table),
                "paper": Verdict(4, "not testable", "the paper reports no MI numbers")})
    return out


def claims_text(table: Table, markdown: bool = False) -> str:
    lines = [f"Claims (SPEC §6) on {table.spec.name}, main column {table.spec.main}:"]
    for c in check_claims(table):
        bullet = "- " if markdown else "  "
        lines.append(f"{bullet}{c['claim']}. {c['text']}: {c['ours']}")
        lines.append(f"{'  ' if markdown else '     '}paper's own numbers: {c['paper']}")
    return "\n".join(lines)
