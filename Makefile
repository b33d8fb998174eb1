# `make demo` and `make test` are all a new machine needs: both install first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch/torchvision/torchaudio are pinned in pyproject.toml; pip takes them from the local wheel cache when present.

.PHONY: install demo test lint clean gpu-check gpu-wheels

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python -m gmf_repro.demo

test: install
	$(BIN)/python -m pytest tests

lint: install
	$(BIN)/ruff check gmf_repro tests scripts

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache

# `make gpu-check`: every GPU figure in at most 8 minutes (docs/gpu.md); without a CUDA device it says so and exits 0.
# It installs nothing: it runs with the venv's Python when there is one, else $(PY) (e.g. a machine's own torch,
# with the wheels of `make gpu-wheels` on PYTHONPATH). Options: make gpu-check ARGS='--markdown --only frozen_gmf'.
GPU_PY ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY))

gpu-check:
	$(GPU_PY) scripts/gpu_check.py $(ARGS)

# The wheels (Python 3.12, Linux x86-64) that `make gpu-check` needs beyond torch, torchvision, torchaudio and
# Lightning, into .whl/ (git-ignored): scripts/gpu_wheels.txt lists them.
gpu-wheels:
	scripts/fetch_gpu_wheels.sh .whl
