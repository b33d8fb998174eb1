"""Every experiment runs on the embedded data with only its data swapped in (docs/reproducing.md, "One command per
table"): ``data=avsynth`` for Tables 2, 4 and 7, ``data=synth_retrieval`` at ActivityNet's dims for Table 3, through
``run(cfg)`` with one training step. A table sweep's rows (``+table3_row``, ``+table7_row``, ...) are each a job
of their own. Trainable extractors get media-like samples and start from scratch (no checkpoint files here)."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_cfg

from gmf_repro.config import compose, group_options
from gmf_repro.run import run

EMBEDDED = {"table2_frozen": ["data=avsynth"], "table2_trainable": ["data=avsynth"], "table4": ["data=avsynth"],
            "table7": ["data=avsynth"],
            # the Table 3 settings map one modality to the other's width: ActivityNet's image 128, video 4096
            "table3": ["data=synth_retrieval", "data.dims=[128,4096]"]}
# media-like samples for the trainable extractors (conf/experiment/table2_trainable.yaml names these)
SHAPES = "data.shapes={audio:[2,16,16],video:[4,16,16,3]}"
ONE_STEP = ["threads=1", "logger=none", "progress=none", "print_config=false", "trainer=cpu", "trainer.max_epochs=1",
            "+trainer.limit_train_batches=1", "data.n_train=2", "data.n_test=2", "data.batch_size=2",
            "eval.complexity=false", "eval.mutual_information=false", "checkpoint=none"]


def jobs() -> list[list[str]]:
    """``experiment=<name>`` for each experiment file, and one job per row of a sweep over table rows (the
    ``+<table>_row`` sweeper params; the seeds and fusers a sweep also lists are left to the other tests)."""
    out = []
    for name in group_options("experiment"):
        params = compose([f"experiment={name}"], return_hydra_config=True).hydra.sweeper.params or {}
        rows = [(key, value) for key, value in params.items() if key.lstrip("+").endswith("_row")]
        if rows and name not in ("table4", "claims"):  # table4 sweeps table7's rows; claims' rows run in test_claims
            (key, values), = rows
            out += [[f"experiment={name}", f"{key}={v}"] for v in str(values).split(",")]
        else:
            out.append([f"experiment={name}"])
    return out


@pytest.mark.parametrize("overrides", jobs(), ids=lambda o: " ".join(o).replace("experiment=", ""))
def test_every_experiment_trains_a_step_on_its_embedded_data(overrides: list[str], tmp_path: Path) -> None:
    table = compose(overrides).report.table
    data = EMBEDDED[table] if table else ["data=avsynth"]
    cfg = compose([*overrides, *data])
    extra = [SHAPES] if cfg.extractors and data == ["data=avsynth"] else []
    extra += [f"extractors.{m}.weights=null" for m, node in cfg.extractors.items() if node and "weights" in node]
    res = run(make_cfg(tmp_path, [*overrides, *data, *ONE_STEP, *extra], tiny=False))
    assert res["status"] == "ok" and res["data"] == data[0].removeprefix("data=") and res["table"] == table
    conditions = cfg.eval.conditions
    assert res["timings"]["epochs"] == 1 and (conditions == "auto" or list(res["metrics"])[:len(conditions)] ==
                                              list(conditions))
    first = next(iter(res["metrics"].values()))
    assert first and all(0.0 <= v <= 1.0 for k, v in first.items() if k != "ce")
