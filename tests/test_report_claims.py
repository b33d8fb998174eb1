"""The claims can come out either way: a planted case for each verdict, on any set of modalities.

Every record here is what a run writes (results.json: table, row, seed, setting, metrics, analysis), so
the verdicts are the report's, from its own aggregation.
"""
from __future__ import annotations

from typing import Any

import pytest

from gmf_repro.report.claims import check_claims
from gmf_repro.report.tables import build_table, build_tables

SEEDS = (1, 2, 3, 4, 5)


def run(fuser: str, seed: int, metrics: dict[str, dict[str, float]], row: str | None = None,
        table: str | None = "table2_frozen", data: str = "vggsound_features", **fields: Any) -> dict[str, Any]:
    return {"fuser": fuser, "row": row or fuser, "table": table, "data": data, "seed": seed, "status": "ok",
            "setting_digest": row or fuser, "metrics": metrics, **fields}


def av(a: float, v: float, both: float, ce: float | None = None) -> dict[str, dict[str, float]]:
    out = {"A": {"acc": a}, "V": {"acc": v}, "AV": {"acc": both}}
    if ce is not None:
        out["AV"]["ce"] = ce
    return out


def params(n: float) -> dict[str, dict[str, float]]:
    return {"complexity": {"params": n, "flops": n * 2}}


def verdict(table, claim: int, source: str = "ours"):
    return next(c for c in check_claims(table) if c["claim"] == claim)[source]


# ------------------------------------------------------------------ claim 1 and a fuser without parameters
@pytest.mark.parametrize("concat_av, expected", [
    (0.50, "no"),  # as accurate as GMF on every seed and no parameters: GMF's parameters are no fraction of it
    (0.40, "yes"),  # clearly less accurate: its zero parameters do not count against GMF
])
def test_a_parameter_free_fuser_follows_the_rule(concat_av: float, expected: str) -> None:
    noise = (0.0, 0.004, -0.003, 0.002, -0.001)
    runs = [run("gmf", s, av(0.4, 0.4, 0.50 + e), **params(5e6)) for s, e in zip(SEEDS, noise, strict=True)]
    runs += [run("concat", s, av(0.3, 0.3, concat_av + e / 2), **params(0)) for s, e in zip(SEEDS, noise, strict=True)]
    (table,) = build_tables(runs)
    claim = verdict(table, 1)
    assert (claim.verdict, claim.n) == (expected, 5)
    assert "params 5M vs Baseline (concat) 0 (no fusion parameters)" in claim.detail
    if expected == "no":
        assert "Baseline (concat) is at least as accurate" in claim.detail and "GMF is not cheaper" in claim.detail


def test_a_parameter_free_fuser_that_cannot_be_told_apart_leaves_claim1_inconclusive() -> None:
    # GMF 2.5 points below concat on average, but the seeds swing from -34 to +29: neither close nor far is shown
    runs = [run("gmf", 1, av(0.5, 0.5, 0.65), **params(8e3)), run("gmf", 2, av(0.5, 0.5, 0.99), **params(8e3))]
    runs += [run("concat", s, av(0.5, 0.5, 0.83), **params(0)) for s in (1, 2)]
    (table,) = build_tables(runs)
    claim = verdict(table, 1)
    assert claim.verdict == "inconclusive" and claim.n == 2 and "is not decided" in claim.detail


def test_the_papers_verdicts_use_its_whole_table_whatever_rows_we_ran() -> None:
    mine = [run(f, s, av(0.3, 0.3, 0.4), **params(1e6)) for f in ("gmf", "concat") for s in (1, 2)]
    (few,) = build_tables(mine)
    (more,) = build_tables(mine + [run(f, s, av(0.3, 0.3, 0.4)) for f in ("mbt", "uavm", "g_mbt") for s in (1, 2)])
    whole = build_table([], "table2_frozen", all_rows=True)
    for n in (1, 2, 3):
        expected = str(verdict(whole, n, "paper"))
        assert str(verdict(few, n, "paper")) == str(verdict(more, n, "paper")) == expected
    # Table 2 frozen as printed: GMF within 1.77 of Perceiver at 11.7% of its parameters; UAVM loses less
    assert verdict(few, 1, "paper").verdict == "yes" and "params 5.25M vs Perceiver 45M (11.7%)" in str(
        verdict(few, 1, "paper"))
    assert verdict(few, 2, "paper").verdict == "no" and "UAVM" in verdict(few, 2, "paper").detail


# ------------------------------------------------------------------ claim 2 on any modalities
def test_a_gmf_that_loses_the_most_fails_claim2() -> None:
    runs = [run("gmf", s, av(0.10 + e, 0.12 + e, 0.50 + e)) for s, e in zip(SEEDS, (0, .01, .02, .01, 0), strict=True)]
    runs += [run("mbt", s, av(0.40 + e, 0.41, 0.50 + e)) for s, e in zip(SEEDS, (0, .02, .01, 0, .01), strict=True)]
    (table,) = build_tables(runs)
    claim = verdict(table, 2)
    assert (claim.verdict, claim.n) == ("no", 5)
    assert "AV->A drop: GMF 40.00 ± 0.00 (n=5) vs MBT 10.00 ± 0.00 (n=5); MBT - GMF -30.00" in claim.detail


def tia(full: float, one_missing: float, two_missing: float, seed: int) -> dict[str, dict[str, float]]:
    """Seven conditions of text-image-audio data, as `eval.conditions=auto` writes them (largest first)."""
    wobble = 0.003 * seed
    blocks = {"TIA": full, "TI": one_missing, "TA": one_missing - 0.01, "IA": one_missing - 0.02,
              "T": two_missing, "I": two_missing, "A": two_missing}
    return {c: {"acc": v + wobble} for c, v in blocks.items()}


@pytest.mark.parametrize("gmf_one_missing, expected", [(0.85, "yes"), (0.55, "no")])
def test_claim2_on_three_modalities_uses_the_columns_with_one_modality_missing(gmf_one_missing: float,
                                                                               expected: str) -> None:
    runs = [run("gmf", s, tia(0.9, gmf_one_missing + 0.004 * (s % 2), 0.5, s), table=None, data="features")
            for s in (1, 2, 3)]
    runs += [run("concat", s, tia(0.9, 0.70, 0.5, s), table=None, data="features") for s in (1, 2, 3)]
    (table,) = build_tables(runs)
    assert table.name == "own_features" and [c.name for c in table.spec.columns][:7] == [
        "TIA", "TI", "TA", "IA", "T", "I", "A"]
    assert (table.spec.main, table.spec.missing) == ("TIA", ("TI", "TA", "IA"))
    claim = verdict(table, 2)
    assert (claim.verdict, claim.n) == (expected, 3)
    assert "TIA->TI drop" in claim.detail and "TIA->IA drop" in claim.detail and "TIA->T drop" not in claim.detail
    assert verdict(table, 2, "paper").detail == "the paper has no table for these runs"


# ------------------------------------------------------------------ claim 4: MI against the untrained GMF, entropy
def mi(exchanged: float) -> dict[str, Any]:
    # "inputs" (MI between the raw inputs) is recorded but never compared: functions of the inputs cannot
    # share more information than the inputs (data-processing inequality), so that comparison cannot fail
    return {"analysis": {"mutual_information": {"exchanged": exchanged, "inputs": 0.9}}}


def claim4_runs(trained_mi: list[float], init_mi: list[float], gmf_ce: list[float],
                concat_ce: list[float]) -> list[dict[str, Any]]:
    runs = []
    for i, s in enumerate((1, 2, 3)):
        runs.append(run("gmf", s, av(0.4, 0.4, 0.5, ce=gmf_ce[i]), **mi(trained_mi[i])))
        runs.append(run("gmf", s, av(0.1, 0.1, 0.1, ce=2.3), row="gmf_init", **mi(init_mi[i])))
        runs.append(run("concat", s, av(0.4, 0.4, 0.5, ce=concat_ce[i])))
    return runs


def test_an_untrained_gmf_does_not_pass_claim4() -> None:
    # trained for zero steps: its parts are those at initialisation, on every seed; its loss is no lower
    same = [0.21, 0.35, 0.17]
    (table,) = build_tables(claim4_runs(same, same, [2.30, 2.31, 2.29], [2.30, 2.31, 2.29]))
    claim = verdict(table, 4)
    assert claim.verdict == "inconclusive" and claim.n == 3 and claim.means_say == "no"
    assert "MI inconclusive: " in claim.detail and "initialisation - trained +0.000" in claim.detail
    # the same GMF runs alone (no run at initialisation, no concat): nothing to compare, and it says so
    (alone,) = build_tables([r for r in claim4_runs(same, same, [2.3] * 3, [2.3] * 3) if r["row"] == "gmf"])
    assert verdict(alone, 4).verdict == "not testable"


@pytest.mark.parametrize("trained_mi, gmf_ce, expected", [
    ([0.10, 0.12, 0.09], [0.80, 0.85, 0.82], "yes"),  # lower MI than at initialisation, lower test CE than concat
    ([0.30, 0.33, 0.31], [0.80, 0.85, 0.82], "no"),  # training raised the MI between the exchanged parts
    ([0.10, 0.12, 0.09], [1.30, 1.35, 1.32], "no"),  # GMF's test cross-entropy above concat's
])
def test_claim4_needs_both_the_mi_and_the_entropy_reduction(trained_mi: list[float], gmf_ce: list[float],
                                                            expected: str) -> None:
    (table,) = build_tables(claim4_runs(trained_mi, [0.20, 0.22, 0.21], gmf_ce, [1.00, 1.02, 1.05]))
    claim = verdict(table, 4)
    assert (claim.verdict, claim.n) == (expected, 3)
    assert "MI(inv_j+1; spec_j) after training" in claim.detail and "test cross-entropy GMF" in claim.detail
    assert verdict(table, 4, "paper").verdict == "not testable"


def test_claim4_pairs_each_gmf_setting_with_its_own_initialisation(tmp_path) -> None:
    import json

    from gmf_repro.report.tables import load_results

    for s in (1, 2, 3):
        for n, trained, init in (("2", 0.1, 0.3), ("4", 0.5, 0.3)):
            for row, value in (("gmf", trained + 0.01 * s), ("gmf_init", init)):
                folder = tmp_path / f"{row}-n{n}-s{s}"
                (folder / ".hydra").mkdir(parents=True)
                res = run("gmf", s, av(0.4, 0.4, 0.5), row=row, **mi(value))
                res["setting_digest"] = f"{row}{n}"
                (folder / "results.json").write_text(json.dumps(res))
                (folder / ".hydra" / "overrides.yaml").write_text(
                    f"- +claims_row={row}\n- fuser.n={n}\n- seed={s}\n")
    (table,) = build_tables(load_results([tmp_path]))
    assert [r.key for r in table.rows] == ["gmf n=2", "gmf n=4", "gmf_init n=2", "gmf_init n=4"]
    claim = verdict(table, 4)
    # n=2 lowered the MI between its exchanged parts (entropy untested: no concat), n=4 raised it
    assert claim.verdict == "no"
    assert claim.detail.startswith("GMF n=2: MI yes: ") and "; GMF n=4: MI no: " in claim.detail
