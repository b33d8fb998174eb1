"""The command line as a user meets it: one-line errors, a multirun with W&B offline runs, the complexity CLI."""
import json

import pytest
from conftest import TINY, cli
from wandb_offline import summary


@pytest.mark.parametrize(
    "override, message",
    [
        ("fuser=nope", "unknown fuser 'nope': choose one of"),
        ("data=imagenet", "unknown data 'imagenet': choose one of"),
        ("eval.conditions=[AV,Q]", "invalid eval condition 'Q'"),
        ("data.dims=[64]", "avsynth has 2 modalities"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, override, message):
    proc = cli("gmf_repro", *TINY, override, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr[-2000:]


def test_multirun_writes_results_and_offline_wandb_runs(tmp_path):
    sweep = tmp_path / "sweep"
    # run from another directory: the config tree is found from the package, not the cwd
    proc = cli("gmf_repro", "-m", "fuser=concat,gmf", *TINY, "logger=wandb", "trainer.max_epochs=1",
               "data.num_classes=1,10", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep.rglob("results.json"))]
    assert len(results) == 4
    failed = [r for r in results if r["status"] == "failed"]
    ok = [r for r in results if r["status"] == "ok"]
    # one bad job per fuser (num_classes=1) is recorded, and the sweep goes on
    assert len(failed) == 2 and all("num_classes" in r["error"] for r in failed)
    assert sorted(r["fuser"] for r in ok) == ["concat", "gmf"]
    summaries = [summary(p) for p in sweep.rglob("offline-run-*/run-*.wandb")]
    assert len(summaries) == 2, list(sweep.rglob("*"))[:50]
    by_fuser = {s["fuser"]: s for s in summaries}
    for r in ok:
        assert by_fuser[r["fuser"]]["metrics/AV/acc"] == pytest.approx(r["metrics"]["AV"]["acc"])
        assert by_fuser[r["fuser"]]["complexity/params"] == r["complexity"]["params"]


def test_complexity_cli_json(tmp_path):
    proc = cli("gmf_repro.complexity", "fuser=gmf,concat", "dims=[512,512]", "format=json", "repeats=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["fuser"] for r in rows] == ["gmf", "concat"]
    assert rows[0]["params"] == 5_250_048 and rows[0]["flops"] == 2 * 5_242_880
    assert rows[0]["cpu_latency_s"] > 0 and rows[1]["params"] == 0
    assert {"fuser", "params", "flops", "cpu_latency_s"} <= set(rows[0])


def test_complexity_cli_rejects_unknown_fuser(tmp_path):
    proc = cli("gmf_repro.complexity", "fuser=nope", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown fuser 'nope'" in proc.stderr
