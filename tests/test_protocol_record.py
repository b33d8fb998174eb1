"""The protocol record (gmf_repro/protocol.py) of composed experiments, and the report's Protocol section: a planted
difference from the paper is listed, a run that matches shows none, runs on the embedded data say so in one line."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from gmf_repro.config import compose
from gmf_repro.protocol import PROTOCOLS, protocol_record
from gmf_repro.report.build import build_report, render
from gmf_repro.report.protocol import protocol_lines

GPU = SimpleNamespace(precision="16-mixed")  # what run() passes: the trainer, for the precision it resolved


def record(*overrides: str, trainer=GPU, datamodule=None) -> dict:
    return protocol_record(compose(list(overrides)), trainer, datamodule)


def entries(rec: dict) -> dict:
    return {k: (e["status"], e["ours"], e["paper"]) for k, e in rec["entries"].items()}


def test_vggsound_frozen_records_the_frame_span_as_a_difference():
    rec = record("experiment=vggsound_frozen", "fuser=gmf")
    got = entries(rec)
    assert rec["on_paper_data"] and rec["dataset"] == "VGGSound" and rec["data"] == "vggsound_features"
    assert "Table 2, frozen" in rec["follows"]
    assert got["data.standardize"] == ("same", False, False)
    assert got["task.optimizer._target_"] == ("same", "torch.optim.SGD", "torch.optim.SGD")
    assert got["trainer.max_epochs"] == ("same", 20, 20) and got["data.batch_size"] == ("same", 64, 64)
    assert got["run.precision"] == ("same", "16-mixed", "16-mixed") and got["eval.missing"][0] == "same"
    # VGGSound's 15 frames cover the first 3 s while the audio covers 9 s: the one difference by default
    assert [k for k, (status, *_) in got.items() if status == "differs"] == ["data.frame_span_s"]
    assert rec["entries"]["data.frame_span_s"]["ours_text"].startswith("the first 3 s")
    assert "fuser.absent_logits" not in got  # GMF has no such choice
    assert not any(k.startswith("store.") for k in got)  # no store was read (no datamodule)
    assert entries(record("experiment=vggsound_frozen", "data.frame_span_s=9"))["data.frame_span_s"][0] == "same"
    cpu = entries(record("experiment=vggsound_frozen", trainer=SimpleNamespace(precision="32-true")))
    assert cpu["run.precision"] == ("differs", "32-true", "16-mixed")


def test_uavm_records_its_evaluation_branch():
    uavm = ["experiment=vggsound_frozen", "fuser=uavm"]
    assert entries(record(*uavm))["fuser.absent_logits"] == ("same", "drop", "drop")
    averaged = entries(record(*uavm, "fuser.absent_logits=average"))
    assert averaged["fuser.absent_logits"] == ("differs", "average", "drop")


@pytest.mark.parametrize("modality, label, extractor", [
    ("audio", "audio", "gmf_repro.models.extractors.ResNet18Audio"),
    ("video", "video", "gmf_repro.models.extractors.R2Plus1D18"),
])
def test_fakeavceleb_baselines_record_their_stream_and_table6(modality, label, extractor):
    rec = record("experiment=fakeavceleb_unimodal", f"modality={modality}")
    got = entries(rec)
    assert "FakeAVCeleb" in rec["follows"] and modality in rec["follows"] and rec["on_paper_data"]
    assert got["data.label_by"] == ("same", label, label)
    assert got[f"extractors.{modality}._target_"] == ("same", extractor, extractor)
    assert got[f"extractors.{modality}.weights"] == ("same", None, None)  # from scratch (§5.1)
    assert got["task.optimizer._target_"][1:] == ("torch.optim.Adam", "torch.optim.Adam")
    assert got["task.optimizer.betas"] == ("same", [0.5, 0.9], [0.5, 0.9])
    assert got["trainer.max_epochs"] == ("same", 5, 5) and got["data.batch_size"] == ("same", 16, 16)
    assert got["callbacks.bn_recalibration.enabled"] == ("open", True, None)
    assert [k for k, (status, *_) in got.items() if status == "differs"] == []


def test_the_table6_audio_extractor_and_a_method_specific_store_are_told_apart():
    table6 = entries(record("experiment=fakeavceleb_unimodal", "modality=audio",
                            "extractor@extractors.audio=r2plus1d_18_audio"))
    assert table6["extractors.audio._target_"][0] == "differs"  # the main text's ResNet-18 is the paper's value
    mae = entries(record("experiment=fakeavceleb_unimodal", "modality=video_mae"))
    assert mae["extractors.video._target_"] == ("same", "gmf_repro.models.vit_mae.MAEViTVideo",
                                                "gmf_repro.models.vit_mae.MAEViTVideo")
    assert mae["extractors.video.weights"][0] == "open"  # the paper names no weights for GMF-MAE's store here
    clip = entries(record("experiment=fakeavceleb_unimodal", "modality=audio", "data.label_by=clip"))
    assert clip["data.label_by"] == ("differs", "clip", "audio")


def test_fakeavceleb_fusers_record_the_labels_of_the_stores_they_read():
    store = {m: {"label_by": m, "bn_recalibrated": True, "extractor": "x"} for m in ("audio", "video")}
    got = entries(record("experiment=table7", "+table7_row=gmf", datamodule=SimpleNamespace(store_meta=store)))
    assert got["data.label_by"] == ("same", "clip", "clip") and got["data.standardize"][0] == "same"
    assert got["store.audio.label_by"] == ("same", "audio", "audio")
    assert got["store.video.bn_recalibrated"] == ("open", True, None)
    old = {m: {"label_by": None} for m in ("audio", "video")}  # a store the unimodal runs wrote on clip labels
    got = entries(record("experiment=table7", "+table7_row=gmf", datamodule=SimpleNamespace(store_meta=old)))
    assert got["store.audio.label_by"] == ("differs", None, "audio")
    trainable = entries(record("experiment=fakeavceleb_trainable", "fuser=gmf"))
    assert trainable["task.optimizer._target_"] == ("differs", "torch.optim.Adam", "torch.optim.SGD")


def test_every_table_and_role_has_a_protocol_and_the_embedded_data_is_not_the_papers():
    rec = record("experiment=table2_frozen", "data=avsynth")
    assert rec["entries"] and not rec["on_paper_data"] and rec["data"] == "avsynth"
    assert "data.num_frames" not in rec["entries"]  # avsynth has no media settings: left out, not guessed
    assert record()["follows"].startswith("the paper's fuser training")  # a run outside the tables
    for (table, role), protocol in PROTOCOLS.items():
        assert protocol.entries and len({e.path for e in protocol.entries}) == len(protocol.entries), (table, role)
        assert all(e.source for e in protocol.entries), (table, role)


# ------------------------------------------------------------------------------ the report's Protocol section
def write_run(root: Path, name: str, protocol: dict, **fields) -> None:
    res = {"fuser": name, "data": "vggsound_features", "task": "classification", "seed": 1, "table": "table2_frozen",
           "row": name, "experiment": "table2_frozen", "group": "table2_frozen", "tags": [], "status": "ok",
           "metrics": {"AV": {"acc": 0.3}, "A": {"acc": 0.2}, "V": {"acc": 0.2}}, "timings": {"fit_s": 1.0},
           "config_digest": name, "setting_digest": name, "protocol": protocol, **fields}
    (root / name).mkdir(parents=True)
    (root / name / "results.json").write_text(json.dumps(res))


def test_a_planted_difference_is_listed_and_a_matching_run_shows_none(tmp_path):
    matching = record("experiment=vggsound_frozen", "fuser=gmf", "data.frame_span_s=9")
    write_run(tmp_path / "ok", "gmf", matching)
    (table,) = build_report([tmp_path / "ok"]).tables
    (line,) = protocol_lines(table)
    assert line.startswith("The runs follow the paper's protocol in every recorded choice")
    # planted: MBT at lr 0.1; GMF with the default frame span
    write_run(tmp_path / "planted", "mbt", record("experiment=vggsound_frozen", "fuser=mbt", "data.frame_span_s=9",
                                                  "task.optimizer.lr=0.1"))
    write_run(tmp_path / "planted", "gmf", record("experiment=vggsound_frozen", "fuser=gmf"))
    (table,) = build_report([tmp_path / "planted"]).tables
    assert protocol_lines(table) == [
        "learning rate: ours 0.1, paper 0.01 (paper Table 5; docs/paper.md §4) [MBT]",
        "the 15 frames' time span: ours the first 3 s (15 consecutive frames at 5 fps) while the audio covers 9 s, "
        "paper the first 9 s, which the audio covers (paper App. G.2 keeps the first 9 s and the audio covers them; "
        "which 15 of its 45 frames is not said (docs/paper.md §2.2)) [GMF]"]
    text = render(build_report([tmp_path / "planted"]), "markdown")
    assert "**Protocol** (where the runs differ from the paper's)" in text
    assert text.index("**Protocol**") < text.index("The paper's claims")


def test_runs_on_the_embedded_data_say_so_in_one_line(tmp_path):
    write_run(tmp_path, "gmf", record("experiment=table2_frozen", "data=avsynth"), data="avsynth")
    (table,) = build_report([tmp_path]).tables
    assert protocol_lines(table) == [
        "The runs are on avsynth, not VGGSound: their settings are not compared with the paper's protocol (each "
        "results.json holds its record under 'protocol')."]


def test_table2_frozen_on_avsynth_writes_a_protocol_and_its_report_shows_it(tmp_path):
    from conftest import make_cfg

    from gmf_repro.run import run

    res = run(make_cfg(tmp_path / "run", ["experiment=table2_frozen", "data=avsynth", "fuser=concat",
                                          "trainer.max_epochs=1"]))
    stored = json.loads((tmp_path / "run" / "results.json").read_text())["protocol"]
    assert stored == json.loads(json.dumps(res["protocol"])) and stored["entries"]
    assert stored["entries"]["run.precision"]["ours"] == "32-true"  # what the CPU run used
    assert not stored["on_paper_data"]
    text = render(build_report([tmp_path]), "markdown")
    assert "**Protocol**" in text and "The runs are on avsynth, not VGGSound" in text
