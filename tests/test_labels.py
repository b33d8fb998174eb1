"""Run labels come from the options chosen in each group, and each run records its place in the report."""
from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from gmf_repro.config import CONF_DIR, compose
from gmf_repro.errors import UserError
from gmf_repro.report.aggregate import build_tables, row_key
from gmf_repro.report.build import build_report
from gmf_repro.report.specs import TABLE_NAMES
from gmf_repro.run import run


@pytest.mark.parametrize("overrides, labels", [
    ([], ("gmf", "avsynth", "classification")),
    (["fuser=demo/mbt"], ("mbt", "avsynth", "classification")),  # a size variant shares its method's label
    (["fuser=paper/g_mbt"], ("g_mbt", "avsynth", "classification")),
    (["fuser=retrieval/gmf", "data=synth_retrieval", "task=retrieval"], ("gmf", "synth_retrieval", "retrieval")),
    (["data=avsynth_shared", "task=classification_adam"], ("gmf", "avsynth_shared", "classification_adam")),
    (["experiment=table7", "+table7_row=misa"], ("misa", "fakeavceleb_features", "classification")),
])
def test_labels_are_the_chosen_options(overrides: list[str], labels: tuple[str, str, str]) -> None:
    cfg = compose(overrides)
    assert (cfg.labels.fuser, cfg.labels.data, cfg.labels.task) == labels


def test_each_composition_keeps_its_own_labels() -> None:
    """``${hydra:...}`` is resolved while composing, so a later composition cannot change an earlier one's."""
    before = HydraConfig.initialized()
    first = compose(["fuser=concat"])
    second = compose(["fuser=demo/perceiver"])
    assert (first.labels.fuser, second.labels.fuser) == ("concat", "perceiver")
    assert HydraConfig.initialized() == before
    assert compose(["fuser=mbt"], return_hydra_config=True).hydra.runtime.choices.fuser == "mbt"


def _nodes(node: object):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from _nodes(v)


def test_config_nodes_are_plain_instantiate_inputs() -> None:
    """No ``name:`` label beside a ``_target_`` (labels come from the chosen options); only a logger's ``name``
    is its constructor's argument (the run's name)."""
    offenders = []
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        rel = path.relative_to(CONF_DIR).as_posix()
        tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for node in _nodes(tree):
            if "_target_" in node and "name" in node and not rel.startswith("logger/"):
                offenders.append(rel)
    assert offenders == []
    assert len(list(CONF_DIR.rglob("*.yaml"))) > 100


@pytest.mark.parametrize("overrides, place", [
    (["experiment=table2_frozen", "fuser=mbt"], ("table2_frozen", "mbt")),
    (["experiment=vggsound_frozen"], ("table2_frozen", "gmf")),
    (["experiment=vggsound_unimodal", "modality=video"], ("table2_frozen", "unimodal_V")),
    (["experiment=table2_trainable", "fuser=g_mbt"], ("table2_trainable", "g_mbt")),
    (["experiment=table3", "+table3_row=gmf_128"], ("table3", "gmf@128")),
    (["experiment=table3", "+table3_row=apivr_128_4096"], ("table3", "apivr@128-4096")),
    (["experiment=activitynet_4096"], ("table3", "clip@4096")),
    (["experiment=table7", "+table7_row=gmf_mae"], ("table7", "gmf_mae")),
    (["experiment=table4", "+table7_row=baseline"], ("table4", "concat")),
    (["experiment=fakeavceleb_unimodal", "modality=audio_slstm"], ("table7", "unimodal_A")),
    (["experiment=demo"], ("table2_frozen", "gmf")),
    (["experiment=claims", "+claims_row=unimodal_audio"], ("table2_frozen", "unimodal_A")),
    ([], (None, "gmf")),  # a one-off run names no table: the report places it by its data
])
def test_each_experiment_records_its_place_in_the_report(overrides: list[str], place: tuple) -> None:
    cfg = compose(overrides)
    assert (cfg.report.table, cfg.report.row) == place
    assert cfg.report.table is None or cfg.report.table in TABLE_NAMES


def test_a_table_that_does_not_exist_is_refused_before_the_run() -> None:
    with pytest.raises(UserError, match=r"report.table='table5' is not a paper table: use one of table2_frozen"):
        run(compose(["report.table=table5"]))  # refused before anything is built or written


def test_the_report_uses_the_recorded_place_and_never_guesses_one(tmp_path) -> None:
    import json

    recorded = {"fuser": "gmf", "data": "avsynth", "task": "retrieval", "table": "table3", "row": "gmf@128",
                "dims": {"image": 128, "video": 4096}, "status": "ok", "metrics": {"IV": {"map@10": 0.3}}}
    # recorded beats what the data, task and dims would suggest (avsynth, unequal dims -> 128-4096)
    assert row_key(recorded) == "gmf@128"
    (table,) = build_tables([recorded])
    assert table.spec.name == "table3" and [r.key for r in table.rows] == ["gmf@128"]
    # a record without a table (a one-off run) is one of our own runs, with a note; no paper table is guessed
    unplaced = {k: v for k, v in recorded.items() if k not in ("table", "row")}
    for name, res in (("placed", recorded), ("unplaced", unplaced)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(res))
    report = build_report([tmp_path])
    assert [t.name for t in report.tables] == ["table3@avsynth", "own_avsynth"]
    assert [r.key for r in report.tables[1].rows] == ["gmf"] and report.tables[1].spec.main == "IV"
    (note,) = report.notes
    assert note.startswith("1 of 2 runs recorded no paper table") and "not placed in one of the paper's" in note
