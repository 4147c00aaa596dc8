# Every target installs first when needed (a fresh clone needs only python3 >= 3.10).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench reproduce clean

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

# Every paper table whose data are here: synthetic always; MNIST rows when DATA_ROOT holds
# MNIST/raw; CIFAR-10 rows when it holds cifar-10-batches-py. Both cores: two joblib
# workers with one thread each. Re-running skips finished runs and resumes unfinished ones.
DATA_ROOT ?=
REPRO := outputs/reproduce
PARALLEL := hydra/launcher=joblib hydra.launcher.n_jobs=2
QSTE := OMP_NUM_THREADS=1 $(BIN)/qste train
DATA := dataset.root=$(abspath $(DATA_ROOT)) dataset.download=false

reproduce: install  ## the papers' tables and plots, under outputs/reproduce/
	$(QSTE) experiment=lyx_synthetic $(PARALLEL) hydra.sweep.dir=$(REPRO)/lyx_synthetic
	@if [ -n "$(DATA_ROOT)" ] && [ -d "$(DATA_ROOT)/MNIST/raw" ]; then set -e; \
	  $(QSTE) experiment=lyx_mnist $(DATA) $(PARALLEL) hydra.sweep.dir=$(REPRO)/lyx_mnist; \
	  $(QSTE) experiment=y19_mnist_float $(DATA) hydra.run.dir=$(REPRO)/y19_mnist/float; \
	  $(QSTE) experiment=y19_mnist $(DATA) $(PARALLEL) init_from=$(REPRO)/y19_mnist/float hydra.sweep.dir=$(REPRO)/y19_mnist; \
	  $(QSTE) experiment=y19_instability $(DATA) $(PARALLEL) hydra.sweep.dir=$(REPRO)/y19_instability \
	    init_from=$(REPRO)/y19_mnist/relu-4,$(REPRO)/y19_mnist/clipped_relu-4; \
	else echo "MNIST rows skipped: DATA_ROOT=$(DATA_ROOT) holds no MNIST/raw"; fi
	@if [ -n "$(DATA_ROOT)" ] && [ -d "$(DATA_ROOT)/cifar-10-batches-py" ]; then \
	  $(QSTE) experiment=y19_cifar $(DATA) $(PARALLEL) hydra.sweep.dir=$(REPRO)/y19_cifar; \
	else echo "CIFAR-10 rows skipped: DATA_ROOT=$(DATA_ROOT) holds no cifar-10-batches-py"; fi
	$(BIN)/qste report $(REPRO)
