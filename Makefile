# text2seg-widgets: every target sets itself up on a fresh machine.
#   make install   venv + torch + the package with its dev/geo/ray extras (reused while up to date)
#   make lab       JupyterLab on the quickstart notebook (offline-capable)
#   make segment   the command-line pseudo-labeller on a sample image
#   make test      everything above plus Debian chromium and postgresql, then mypy and the whole test suite
#   make pg        a local PostgreSQL for trying a team project (prints the URL)
#   make bench     every CPU benchmark (slow); make bench-gpu: the pipeline on a CUDA GPU
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARCH := $(shell uname -m)
# torch/torchvision pairs that install from this environment's wheel store (see DESIGN.md s5).
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif
PYTEST_ARGS ?=
SAMPLE ?= ../shared/data/rs-samples/potsdam/images/$(shell ls ../shared/data/rs-samples/potsdam/images 2>/dev/null | head -1)

.PHONY: install lab segment test browser postgres pg clean-venv bench bench-gpu

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e '.[dev,geo,ray]' $(TORCH_PINS)
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the real-browser tests (never `playwright install`: no CDN here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL for the team-project tests (they start and stop their own throwaway
# cluster; nothing is left running). Only the server binaries are needed, no service.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql for the team-project tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: install browser postgres
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

pg: install postgres
	$(BIN)/text2seg-widgets pg start

lab: install
	$(BIN)/jupyter lab --ip=127.0.0.1 --no-browser $(if $(filter root,$(shell whoami)),--allow-root) notebooks/quickstart.ipynb

segment: install
	$(BIN)/text2seg-widgets segment "$(SAMPLE)" --classes "building,road,tree" --models tiny --out out/segment

# Every CPU benchmark once (slow: real-size random models on the CPU); each saves benchmarks/results/<name>.json
bench: install
	for f in benchmarks/bench_*.py; do [ "$$f" = benchmarks/bench_gpu.py ] && continue; echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The whole pipeline on a CUDA GPU (refuses with one line where there is none)
bench-gpu: install
	$(BIN)/python benchmarks/bench_gpu.py

clean-venv:
	rm -rf $(VENV)
