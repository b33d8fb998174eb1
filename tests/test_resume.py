"""Checkpoints and resume: a killed run resumed with resume=true ends with the metrics of an uninterrupted run,
continues only its own setting (and its own W&B run), and a checkpoint is whole or absent."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import TINY, cli
from omegaconf import open_dict

from gmf_repro.checkpointing import AtomicCheckpointIO, read_record
from gmf_repro.errors import RunFolderError, UserError
from gmf_repro.run import run

QUICK = ("trainer.max_epochs=2", "data.n_train=200", "data.n_test=100")


class KillOnce(pl.Callback):
    """Stands in for a killed job: fails at the start of ``epoch`` the first time (``marker`` says it was),
    and writes every epoch the trainer starts to ``log``. The same config in both runs, as a resume needs."""

    def __init__(self, epoch: int, marker: str, log: str) -> None:
        self.epoch, self.marker, self.epochs_file = epoch, Path(marker), Path(log)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        with self.epochs_file.open("a") as f:
            f.write(f"{trainer.current_epoch}\n")
        if trainer.current_epoch == self.epoch and not self.marker.exists():
            self.marker.touch()
            raise RuntimeError(f"killed at epoch {self.epoch}")


def killed_once(cfg_factory, tmp_path, *settings, name="killed"):
    """The config of a run that is killed at epoch 2 the first time it runs."""
    cfg = cfg_factory(*settings, name=name)
    with open_dict(cfg):
        cfg.callbacks = {"kill": {"_target_": "test_resume.KillOnce", "epoch": 2,
                                  "marker": str(tmp_path / f"{name}.killed"), "log": str(tmp_path / f"{name}.txt")}}
    return cfg


def test_resume_matches_uninterrupted_run(cfg_factory, tmp_path):
    settings = ("fuser=gmf", "trainer.max_epochs=4", "data.n_train=600", "data.n_test=300")
    whole = run(cfg_factory(*settings, name="whole"))

    with pytest.raises(RuntimeError, match="killed at epoch 2"):
        run(killed_once(cfg_factory, tmp_path, *settings))
    before = read_record(tmp_path / "killed" / "checkpoints" / "last.ckpt")
    cfg = killed_once(cfg_factory, tmp_path, *settings)
    with open_dict(cfg):
        cfg.resume = True
    resumed = run(cfg)
    # it continued after the last finished epoch instead of starting again
    assert (tmp_path / "killed.txt").read_text().split() == ["0", "1", "2", "2", "3"]

    assert resumed["timings"]["epochs"] == whole["timings"]["epochs"] == 4
    # the killed run's last.ckpt was there after its second epoch, and the resume replaced it: one file
    assert before["fit_s"] > 0
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()) == ["last.ckpt"]
    assert resumed["metrics"] == whole["metrics"]
    # its training time: the killed run's up to its last checkpoint, plus the resumed run's
    assert before["fit_s"] > 0 and resumed["timings"]["fit_s"] > before["fit_s"]
    assert before["setting"]["labels"] == {"fuser": "gmf", "data": "avsynth", "task": "classification"}


def test_resume_digests_are_those_of_the_run_it_continues(cfg_factory):
    first = run(cfg_factory("fuser=concat", *QUICK, name="r"))
    again = run(cfg_factory("fuser=concat", *QUICK, "resume=true", name="r"))
    assert (again["config_digest"], again["setting_digest"]) == (first["config_digest"], first["setting_digest"])
    assert again["metrics"] == first["metrics"] and again["timings"]["epochs"] == 2
    # nothing left to train: the training time and batch size are the checkpoint's
    record = read_record(Path(first["output_dir"]) / "checkpoints" / "last.ckpt")
    assert again["timings"]["fit_s"] >= record["fit_s"] > 0 and again["batch_size"] == first["batch_size"] == 64


@pytest.mark.parametrize("override, was, now", [
    ("seed=2", "seed=1", "seed=2"),
    ("fuser=concat", "fuser=gmf", "fuser=concat"),
    ("trainer.max_epochs=3", "trainer.max_epochs=2", "trainer.max_epochs=3"),
])
def test_resume_with_another_setting_is_refused_naming_it(cfg_factory, override, was, now):
    first = run(cfg_factory("fuser=gmf", *QUICK, name="r"))
    last = Path(first["output_dir"]) / "checkpoints" / "last.ckpt"
    before = (Path(first["output_dir"]) / "results.json").read_bytes(), last.read_bytes()
    with pytest.raises(RunFolderError) as err:
        run(cfg_factory("fuser=gmf", *QUICK, override, "resume=true", name="r"))
    assert str(err.value) == (
        f"resume=true continues {last} only with the settings that trained it: it was trained with {was}, this run "
        f"has {now}; resume with {was}, or give this run its own hydra.run.dir=<folder>")
    assert ((Path(first["output_dir"]) / "results.json").read_bytes(), last.read_bytes()) == before


def test_a_killed_runs_folder_is_refused_unless_resumed(cfg_factory, tmp_path):
    with pytest.raises(RuntimeError, match="killed at epoch 2"):
        run(killed_once(cfg_factory, tmp_path, "fuser=gmf", "trainer.max_epochs=3", "data.n_train=200"))
    folder = tmp_path / "killed"
    ckpts = sorted(p.name for p in (folder / "checkpoints").iterdir())
    with pytest.raises(RunFolderError) as err:
        run(cfg_factory("fuser=concat", *QUICK, name="killed"))
    assert str(err.value) == (
        f"run folder {folder} holds the checkpoints of a run that did not finish ({folder}/checkpoints/last.ckpt, "
        f"gmf on avsynth, seed 1); set resume=true to continue that run, or give this run its own "
        f"hydra.run.dir=<folder>")
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ckpts  # no last-v1.ckpt beside them


def test_a_damaged_last_checkpoint_is_named_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(os.urandom(4096))
    proc = cli("gmf_repro", *TINY, "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == (
        f"error: checkpoint {last} cannot be read (not the zip archive torch.save writes): it is damaged (a write "
        f"cut short) or not a checkpoint; restore it from a copy, or start over without resume=true in a new "
        f"hydra.run.dir=<folder>")
    assert not (run_dir / ".hydra").exists()  # refused before anything was written


def test_a_checkpoint_cut_short_is_named_before_any_data_is_loaded(cfg_factory):
    first = run(cfg_factory("fuser=concat", *QUICK, name="r"))
    last = Path(first["output_dir"]) / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    cfg = cfg_factory("fuser=concat", *QUICK, "resume=true", name="r")
    with open_dict(cfg):
        cfg.data._target_ = "no.such.DataModule"  # building the data would fail with another error
    with pytest.raises(RunFolderError, match=rf"^checkpoint {last} cannot be read \(not the zip archive"):
        run(cfg)


def test_resume_with_another_fuser_on_the_command_line_keeps_the_folder_as_it_was(tmp_path):
    run_dir = tmp_path / "run"
    first = cli("gmf_repro", *TINY, *QUICK, "fuser=gmf", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    kept = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"}
    proc = cli("gmf_repro", *TINY, *QUICK, "fuser=concat", "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == (f"error: resume=true continues {run_dir}/checkpoints/last.ckpt only with the settings that "
                        f"trained it: it was trained with fuser=gmf, this run has fuser=concat; resume with "
                        f"fuser=gmf, or give this run its own hydra.run.dir=<folder>")
    # its provenance, results and checkpoints as they were: no file rewritten, none added
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"} == kept
    assert "fuser: gmf" in (run_dir / ".hydra" / "hydra.yaml").read_text()  # Hydra's record of the choices
    assert (run_dir / ".hydra" / "overrides.yaml").read_text().count("fuser=gmf") == 1

    # the same setting resumes: its own .hydra/ beside the first run's, which stays
    proc = cli("gmf_repro", *TINY, *QUICK, "fuser=gmf", "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == kept[run_dir / ".hydra" / "config.yaml"]
    assert "resume=true" in (run_dir / ".hydra" / "resume-1" / "overrides.yaml").read_text()


def test_sigkill_then_resume_continues_the_same_wandb_run_and_counts_all_training_time(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "logger=wandb", "fuser=gmf", "trainer.max_epochs=40", "data.n_train=1000", "data.n_test=100",
            f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "gmf_repro", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if last.exists() and (read_record(last) or {}).get("fit_s", 0) > 0.5:
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = read_record(last)
    assert killed["wandb_id"] and not (run_dir / "results.json").exists()

    resumed = cli("gmf_repro", *args, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["timings"]["epochs"] == 40 and results["timings"]["fit_s"] > killed["fit_s"]
    # both processes logged to one W&B run: the one the checkpoint names
    logs = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 2 and {p.stem for p in logs} == {f"run-{killed['wandb_id']}"}


def test_a_failing_checkpoint_write_leaves_no_file_under_its_name(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    good = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, good)
    whole = good.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"\0" * 1000)  # half a checkpoint, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    for path in (good, tmp_path / "epoch=0-step=4.ckpt"):
        with pytest.raises(UserError) as err:
            io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, path)
        assert str(err.value) == (
            f"could not write checkpoint {path} (No space left on device); no partial file was left under that "
            f"name and the earlier checkpoints are whole: free space (or fix the folder), then continue with "
            f"resume=true")
    # the earlier checkpoint whole, no truncated file under a checkpoint's name, no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"] and good.read_bytes() == whole
    assert torch.equal(io.load_checkpoint(good)["state_dict"]["w"], torch.ones(3))


def test_a_run_whose_checkpoint_write_fails_can_be_resumed_from_the_last_whole_one(cfg_factory, monkeypatch):
    saves = {"n": 0}
    real_save = torch.save

    def fails_on_third(obj, f, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 3:
            f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fails_on_third)
    cfg = cfg_factory("fuser=concat", "trainer.max_epochs=3", "data.n_train=200", "data.n_test=100", name="full")
    with pytest.raises(UserError, match=r"could not write checkpoint .*\(No space left on device\)"):
        run(cfg)
    monkeypatch.setattr(torch, "save", real_save)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert not list(folder.glob(".*.tmp"))
    assert all(torch.load(p, weights_only=True)["epoch"] >= 0 for p in folder.glob("*.ckpt"))  # every one whole
    resumed = run(cfg_factory("fuser=concat", "trainer.max_epochs=3", "data.n_train=200", "data.n_test=100",
                              "resume=true", name="full"))
    assert resumed["status"] == "ok" and resumed["timings"]["epochs"] == 3


def test_a_checkpoint_without_a_record_is_checked_against_the_folders_hydra_config(cfg_factory, capsys):
    """Checkpoints written before they recorded their setting: the folder's .hydra/config.yaml says it."""
    from omegaconf import OmegaConf

    cfg = cfg_factory("fuser=concat", *QUICK, name="old")
    first = run(cfg)
    last = Path(first["output_dir"]) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    del checkpoint["callbacks"]["RunRecord"]
    torch.save(checkpoint, last)
    assert read_record(last) is None
    (last.parent.parent / ".hydra").mkdir()
    OmegaConf.save(cfg, last.parent.parent / ".hydra" / "config.yaml")
    with pytest.raises(RunFolderError, match="it was trained with seed=1, this run has seed=2; resume with seed=1"):
        run(cfg_factory("fuser=concat", *QUICK, "seed=2", "resume=true", name="old"))
    (last.parent.parent / ".hydra" / "config.yaml").unlink()  # and with no record at all: a warning, then on
    resumed = run(cfg_factory("fuser=concat", *QUICK, "resume=true", name="old"))
    assert resumed["metrics"] == first["metrics"]
    assert f"warning: {last} records no setting (an older version wrote it)" in capsys.readouterr().err
