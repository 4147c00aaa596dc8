# Every target installs first when needed (a fresh clone needs only python3 >= 3.10).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install  ## train on the embedded default (synthetic clusters, no download)
	$(BIN)/qste train

test: install  ## the test suite (CPU only, no network)
	$(BIN)/python -m pytest

bench: install  ## speed ratios vs float ReLU; writes outputs/bench.json
	$(BIN)/python -m qste.bench

clean:
	rm -rf $(VENV) build *.egg-info
