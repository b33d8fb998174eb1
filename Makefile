# `make demo` and `make test` are all a new machine needs: both install first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch/torchvision/torchaudio are pinned in pyproject.toml; pip takes them from the local wheel cache when present.

.PHONY: install demo test lint clean

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
