"""The config tree ships in both distributions: `python -m gmf_repro` must work after a plain `pip install`."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from gmf_repro.config import CONF_DIR

ROOT = CONF_DIR.parents[1]


def test_sdist_and_wheel_carry_every_config_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gmf_repro", src / "gmf_repro", ignore=shutil.ignore_patterns("__pycache__"))
    build = ("from setuptools import build_meta as b; "
             "s = b.build_sdist('dist'); w = b.build_wheel('dist'); print('BUILT', s, w)")
    proc = subprocess.run([sys.executable, "-c", build], cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sdist_name, wheel_name = proc.stdout.split("BUILT", 1)[1].split()
    want = sorted(f"gmf_repro/conf/{p.relative_to(CONF_DIR).as_posix()}" for p in CONF_DIR.rglob("*.yaml"))
    assert len(want) > 100 and "gmf_repro/conf/config.yaml" in want and "gmf_repro/conf/fuser/demo/gmf.yaml" in want
    with zipfile.ZipFile(src / "dist" / wheel_name) as wheel:
        in_wheel = sorted(n for n in wheel.namelist() if n.startswith("gmf_repro/conf/") and n.endswith(".yaml"))
    with tarfile.open(src / "dist" / sdist_name) as sdist:
        prefix = sdist_name.removesuffix(".tar.gz") + "/"
        in_sdist = sorted(n.removeprefix(prefix) for n in sdist.getnames()
                          if n.startswith(prefix + "gmf_repro/conf/") and n.endswith(".yaml"))
    assert in_wheel == want
    assert in_sdist == want
