"""Every entry point as a new user meets it: ``--help`` (what it does, its options, examples, exit 0, no error
line), and a mistake on the command line as one line naming the override and the fix, exit code 2, before any
config tree. In-process where the entry point allows it; one subprocess per command proves the real command."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli

from gmf_repro.config import check_command_line, compose
from gmf_repro.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))


def script(name: str):
    """A script of scripts/ as a module (its own folder on the path, as `python scripts/<name>.py` has it)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def exit_code(fn, *args) -> int:
    try:
        code = fn(*args)
    except SystemExit as stop:
        code = stop.code
    return int(code or 0)


def assert_help(text: str, err: str, examples: int = 2) -> None:
    assert "usage" in text.lower() and "error" not in err.lower(), err
    lines = text.splitlines()
    assert sum(1 for line in lines if line.strip().startswith(("python ", "scripts/", "GPU_PYTHON_VERSION"))) \
        >= examples, text


def test_main_help_names_options_and_examples(monkeypatch, capsys):
    from gmf_repro.__main__ import main

    monkeypatch.setattr(sys, "argv", ["gmf_repro", "fuser=gmf", "--help"])
    assert exit_code(main) == 0
    out, err = capsys.readouterr()
    assert_help(out, err, examples=3)
    for option in ("experiment=NAME", "fuser=NAME", "data=NAME", "trainer=NAME", "threads=auto", "table2_frozen"):
        assert option in out


@pytest.mark.parametrize("module", ["gmf_repro.demo", "gmf_repro.complexity.cli", "gmf_repro.report.__main__"])
def test_tool_help(module, capsys):
    main = importlib.import_module(module).main
    assert exit_code(main, ["--help"]) == 0
    out, err = capsys.readouterr()
    assert_help(out, err)


def test_bench_help_explains_every_bench_key(monkeypatch, capsys):
    from gmf_repro import bench

    monkeypatch.setattr(sys, "argv", ["gmf_repro.bench", "-h"])
    assert exit_code(bench.main) == 0
    out, err = capsys.readouterr()
    assert_help(out, err, examples=3)
    keys = compose(config_name="bench").bench
    for key, default, text in bench.bench_keys():
        assert f"bench.{key} [{default}]" in out and len(text) > 20, key
    assert sorted(k for k, _, _ in bench.bench_keys()) == sorted(keys)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help(name, capsys):
    assert exit_code(script(name).main, ["--help"]) == 0
    out, err = capsys.readouterr()
    assert_help(out, err)


def test_shell_script_help_and_unknown_option():
    sh = ROOT / "scripts" / "fetch_gpu_wheels.sh"
    proc = subprocess.run(["bash", str(sh), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and not proc.stderr
    assert_help("usage\n" + proc.stdout, proc.stderr, examples=3)
    bad = subprocess.run(["bash", str(sh), "--nope"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown option --nope")


def test_the_hydra_commands_help_as_commands(tmp_path):
    # the others' --help is their main's (above); these two would otherwise reach Hydra's own --help
    for module in ("gmf_repro", "gmf_repro.bench"):
        proc = cli(module, "--help", cwd=tmp_path, timeout=120)
        assert proc.returncode == 0 and "usage" in proc.stdout and "error" not in proc.stderr.lower(), module
    assert not list(tmp_path.iterdir())  # --help runs nothing and writes nothing


@pytest.mark.parametrize("argv, message", [
    (["trainer.max_epochs=2", ".fuser=gmf"], "cannot read the override '.fuser=gmf': unexpected '.' at character 1"),
    (["data.dims=[64,64"], "cannot read the override 'data.dims=[64,64': it ends too early"),
    (["fuser"], "cannot read the override 'fuser': it has no '='"),
    (["trainer.precision=bogus"], "trainer.precision='bogus' is not a precision Lightning knows: use auto"),
    (["fuser=gmff"], "unknown fuser 'gmff': did you mean fuser=gmf? choose one of"),
    (["-m", "fuser=gmf,mbtt"], "unknown fuser 'mbtt' in 'fuser=gmf,mbtt': did you mean fuser=mbt?"),
    (["experiment=table2"], "did you mean experiment=table2_frozen or experiment=table2_trainable?"),
    (["data=features"], "data.path is not set (data=features needs it): add data.path=/path/to/mydata.npz"),
    (["data=clips"], "data.root is not set (data=clips needs it): add data.root=/path/to/your/clips"),
    # a sweep stops on its first job, not in each job
    (["-m", "data=features", "fuser=concat,gmf"], "data.path is not set"),
    (["threads=0"], "threads=0 must be auto, an integer >= 1 or null"),
])
def test_command_line_mistakes_are_named_with_their_fix(argv, message):
    with pytest.raises(UserError) as err:
        check_command_line(argv)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("argv", [
    ["fuser=gmf", "trainer.max_epochs=3"], ["-m", "fuser=concat,gmf", "seed=1,2"], ["experiment=demo"],
    ["data=features", "--cfg", "job"],  # printing a config runs no job: nothing is required
    ["data=features", "data.path=/x.npz", "trainer.precision=bf16-mixed", "threads=auto"],
])
def test_good_command_lines_pass(argv):
    check_command_line(argv)


def test_bench_checks_its_own_tree(monkeypatch):
    with pytest.raises(UserError, match=r"unknown setting 'bench\.step': did you mean bench\.steps\? "
                                        r"\(`python -m gmf_repro\.bench --cfg job`"):
        check_command_line(["bench.step=3"], "bench")
    check_command_line(["bench.steps=3", "experiment=vggsound_frozen"], "bench")


@pytest.mark.parametrize("module, args", [
    ("gmf_repro", ["data=features", "print_config=true"]), ("gmf_repro.bench", ["fuser=gmff"]),
])
def test_a_mistake_is_one_line_exit_2_and_no_config_tree(module, args, tmp_path):
    proc = cli(module, *args, cwd=tmp_path, timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stdout + proc.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module, args, message", [
    ("gmf_repro.demo", ["fuser=gmff"], "error: unknown fuser 'gmff': did you mean fuser=gmf?"),
    ("gmf_repro.demo", ["data=features"], "error: data.path is not set (data=features needs it)"),
    ("gmf_repro.complexity.cli", ["fuser=gmff"], "error: unknown fuser 'gmff': did you mean fuser=gmf?"),
    ("gmf_repro.complexity.cli", ["extractor=slstmm"], "error: unknown extractor 'slstmm': did you mean "
                                                       "extractor=slstm?"),
])
def test_demo_and_complexity_mistakes_are_one_line_before_anything_runs(module, args, message, capsys):
    main = importlib.import_module(module).main
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith(message) and err.count("\n") == 1


def test_the_main_command_stops_before_hydra(monkeypatch, capsys):
    from gmf_repro.__main__ import main

    monkeypatch.setattr(sys, "argv", ["gmf_repro", "trainer.precision=bogus", "print_config=true"])
    assert exit_code(main) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith("error: trainer.precision='bogus' is not a precision") and err.count("\n") == 1


def test_complexity_refuses_an_argument_it_does_not_take(capsys):
    from gmf_repro.complexity.cli import main

    assert main(["data=features"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown argument 'data=features': python -m gmf_repro.complexity "
                                              "takes fuser=")


def test_hydra_flags_anywhere_on_the_line():
    from gmf_repro.__main__ import flags_first

    assert flags_first(["x", "fuser=gmf", "--cfg", "job", "-m", "seed=1,2"]) == \
        ["x", "--cfg", "job", "-m", "fuser=gmf", "seed=1,2"]
