# Two commands for a newcomer:  make lab  (JupyterLab on the notebooks)  and  make test  (the whole suite).
# Both create the environment from uv.lock first if it is missing or stale.

SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH if present, else a private copy bootstrapped with pip into .tools/ (no admin rights needed).
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
# Extra JupyterLab flags, e.g. make lab LAB_ARGS="--no-browser --port 8890" (add --allow-root inside a container).
LAB_ARGS ?=
PYTEST_NB := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
# make test runs JOBS test files / notebooks at a time (pytest-xdist), each with one torch thread:
# on a small CPU that is faster than one notebook with several threads fighting over the cores.
JOBS ?= 2

.PHONY: env lab test refresh strip benchmarks clean help

help:
	@echo "make lab         create the environment if needed, start JupyterLab on notebooks/"
	@echo "make test        create the environment if needed, run pytest on tests/ and nbval on every notebook (fast mode)"
	@echo "make refresh     re-run notebooks in fast mode and store the outputs nbval compares (NB=path to limit)"
	@echo "make strip       clear stray outputs from notebooks (keeps the checked ones)"
	@echo "make benchmarks  run the scripts in benchmarks/"

.tools/bin/uv:
	@echo "uv not found on PATH: installing it into .tools/ with pip"
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv

# --compile-bytecode: store .pyc files once at install; without them every kernel recompiles torch's
# lazily imported modules (seconds per notebook), notably where PYTHONDONTWRITEBYTECODE is set.
env: $(if $(findstring .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --compile-bytecode

lab: env
	$(UV) run --locked jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

test: env
	COURSE_FAST=1 OMP_NUM_THREADS=1 $(UV) run --locked pytest -n $(JOBS) --dist loadfile tests $(NOTEBOOKS) $(PYTEST_NB)

refresh: env
	$(UV) run --locked python tools/notebooks.py refresh $(NB)

strip: env
	$(UV) run --locked python tools/notebooks.py strip $(NB)

benchmarks: env
	@status=0; for script in benchmarks/*.py; do echo "== $$script"; $(UV) run --locked python $$script || status=1; done; exit $$status

clean:
	rm -rf .pytest_cache runs checkpoints notebooks/runs notebooks/checkpoints
