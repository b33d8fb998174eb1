"""Check a folder of wheels for a machine where only torch, torchvision, torchaudio and Lightning are installed:

    python scripts/check_gpu_wheels.py .whl                          # the wheels of `make gpu-wheels`
    python scripts/check_gpu_wheels.py .whl --python-version 3.11     # for a machine with Python 3.11

Without installing anything (the target's Python need not be here), from each wheel's name and METADATA:
one wheel per package; each built for that CPython on Linux x86-64 (pure Python, abi3, or that version;
manylinux up to glibc 2.28); every requirement that applies there met by a wheel of the folder, at a version
its specifier allows, or named among what the machine already has (PREINSTALLED; their versions are not
known here, so those requirements are listed for a look). Exits 1 naming each problem.
"""
from __future__ import annotations

import argparse
import re
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version
except ImportError:  # pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename
    from pip._vendor.packaging.version import Version

# torch, torchvision, torchaudio and Lightning, and what they install with them
PREINSTALLED = {
    "torch", "torchvision", "torchaudio", "pytorch-lightning", "lightning", "lightning-utilities", "torchmetrics",
    "numpy", "pillow", "pyyaml", "packaging", "tqdm", "fsspec", "typing-extensions", "filelock", "jinja2",
    "markupsafe", "networkx", "sympy", "mpmath", "setuptools", "triton",
}
MAX_GLIBC = (2, 28)


def tag_ok(interpreter: str, abi: str, platform: str, cp: int) -> bool:
    """Whether one wheel tag installs on CPython 3.``cp`` for Linux x86-64."""
    m = re.fullmatch(r"(py|cp)(\d)(\d*)", interpreter)
    if not m or m.group(2) != "3":
        return False
    minor = int(m.group(3) or 0)
    if m.group(1) == "py":
        python_ok = abi == "none"
    else:
        python_ok = (abi == "abi3" and minor <= cp) or (abi == f"cp3{cp}" and minor == cp)
    glibc = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
    legacy = {"manylinux1_x86_64": (2, 5), "manylinux2010_x86_64": (2, 12), "manylinux2014_x86_64": (2, 17)}
    platform_ok = platform == "any" or (
        (int(glibc.group(1)), int(glibc.group(2))) <= MAX_GLIBC if glibc else legacy.get(platform, (9, 9)) <= MAX_GLIBC)
    return python_ok and platform_ok


def check(folder: Path, python_version: str) -> tuple[list[str], list[str], list[tuple[str, str, int]]]:
    """(problems, requirements left to the machine, [(wheel, version, bytes)])."""
    cp = int(python_version.split(".")[1])
    env = {"python_version": python_version, "python_full_version": f"{python_version}.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    problems: list[str] = []
    found: dict[str, tuple[Version, Path]] = {}
    metas = {}
    for whl in sorted(folder.glob("*.whl")):
        name, version, _, tags = parse_wheel_filename(whl.name)
        if name in found:
            problems.append(f"two wheels of {name}: {found[name][1].name} and {whl.name}")
        found[name] = (version, whl)
        if not any(tag_ok(t.interpreter, t.abi, t.platform, cp) for t in tags):
            problems.append(f"{whl.name} does not install on CPython {python_version} for Linux x86-64")
        with zipfile.ZipFile(whl) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            metas[name] = Parser().parsestr(z.read(meta).decode())
    if not found:
        problems.append(f"no wheel in {folder}")
    left: list[str] = []
    for name, meta in metas.items():
        for line in meta.get_all("Requires-Dist") or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            if dep in found:
                if not req.specifier.contains(found[dep][0], prereleases=True):
                    problems.append(f"{name} needs {req}, the folder has {dep} {found[dep][0]}")
            elif dep in PREINSTALLED:
                left.append(f"{req} (for {name})")
            else:
                problems.append(f"{name} needs {req}: neither in the folder nor installed with torch or Lightning")
    sizes = [(w.name, str(v), w.stat().st_size) for v, w in found.values()]
    return problems, sorted(set(left)), sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="the folder of .whl files (make gpu-wheels: .whl)")
    p.add_argument("--python-version", default="3.12", help="the target machine's Python (default 3.12)")
    args = p.parse_args(argv)
    problems, left, sizes = check(args.folder, args.python_version)
    for name, _, size in sizes:
        print(f"{size / 2**20:8.2f} MiB  {name}")
    print(f"{len(sizes)} wheels, {sum(s for *_, s in sizes) / 2**20:.1f} MiB")
    for req in left:
        print(f"left to the machine: {req}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
