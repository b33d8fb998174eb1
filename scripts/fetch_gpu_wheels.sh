#!/usr/bin/env bash
# Download the wheels of scripts/gpu_wheels.txt (or only the NAMEs given) for another machine's Python:
#   scripts/fetch_gpu_wheels.sh [DIR] [NAME ...]        (DIR default .whl; `make gpu-wheels`)
# Target: Python $GPU_PYTHON_VERSION (3.12) on Linux x86-64 (manylinux up to glibc 2.28). A package published as
# source only (antlr4-python3-runtime) is built here into a wheel, which must come out pure Python. DIR then holds
# exactly one wheel per package; scripts/check_gpu_wheels.py checks that their requirements are all met.
# Examples:
#   scripts/fetch_gpu_wheels.sh                                     # every wheel into .whl/
#   scripts/fetch_gpu_wheels.sh .whl hydra-core omegaconf           # only these two
#   GPU_PYTHON_VERSION=3.11 scripts/fetch_gpu_wheels.sh /tmp/wheels  # for a machine with Python 3.11
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "error: unknown option $1 (--help shows the usage)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-.whl}
shift || true
pyver=${GPU_PYTHON_VERSION:-3.12}
pip=(${PIP:-python3 -m pip})
list=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/gpu_wheels.txt" | grep -v '^$')
if [ $# -gt 0 ]; then
  for name in "$@"; do
    grep -qi "^${name}==" <<<"$list" || { echo "error: $name is not in scripts/gpu_wheels.txt" >&2; exit 2; }
  done
  list=$(for name in "$@"; do grep -i "^${name}==" <<<"$list"; done)
fi
mkdir -p "$dest"
rm -f "$dest"/*.whl  # one version of each: two would stop the install
target=(--only-binary=:all: --python-version "$pyver" --implementation cp --platform manylinux_2_28_x86_64
        --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
for req in $list; do
  if "${pip[@]}" download --quiet --no-deps "${target[@]}" -d "$dest" "$req" 2>"$build/err"; then
    echo "downloaded $req"
  else  # source only: build it, and accept it only as a pure-Python wheel
    "${pip[@]}" wheel --quiet --no-deps --no-binary=:all: -w "$build" "$req"
    whl=$(ls "$build"/*.whl)
    case "$whl" in
      *-py3-none-any.whl|*-py2.py3-none-any.whl) mv "$whl" "$dest"/; echo "built $req (pure Python)";;
      *) echo "error: $req has no wheel for Python $pyver and is not pure Python: $(cat "$build/err")" >&2; exit 1;;
    esac
  fi
done
ls -l "$dest"/*.whl | awk '{s += $5} END {printf "%d wheels, %.1f MiB in %s\n", NR, s / 1048576, "'"$dest"'"}'
