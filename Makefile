# Two commands for a newcomer:  make lab  (JupyterLab on the notebooks)  and  make test  (the whole suite).
# Both create the environment from uv.lock first if it is missing or stale.

SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH if present, else a private copy bootstrapped with pip into .tools/ (no admin rights needed).
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
# Extra JupyterLab flags, e.g. make lab LAB_ARGS="--no-browser --port 8890" (add --allow-root inside a container).
LAB_ARGS ?=
PYTEST_NB := --nbval-lax --nbval-current-env --nbval-cell-timeout=600 --nbval-sanitize-with tools/nbval_sanitize.cfg
# make test runs the teacher edition (the student notebooks with the worked solutions inserted under each
# exercise): one run executes every student cell and proves every solution right and every typical wrong
# answer wrong. A test checks that removing the inserted cells gives back notebooks/ exactly.
TEACHER := build/teacher
TEACHER_NOTEBOOKS := $(patsubst notebooks/%,$(TEACHER)/%,$(NOTEBOOKS))
# make slides executes the notebooks in fast mode; make slides FULL=1 builds full-mode decks (slower).
# The decks are laid out 1280 x 860 px (reveal.js scales them to the screen): 18 lines of up to ~110 characters fit;
# the default 960 x 700 cuts code lines after ~75 characters.
SLIDES := build/slides
# make test runs JOBS test files / notebooks at a time (pytest-xdist), each with one torch thread:
# on a small CPU that is faster than one notebook with several threads fighting over the cores.
# Default: the CPUs this process may use, at least 2 and at most 8 (each job holds a kernel, ~1-2 GB).
JOBS ?= $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(min(8, max(2, n or 2)))")

.PHONY: env lab hooks lint format test teacher slides refresh strip benchmarks gpu-check clean help

help:
	@echo "make lab         create the environment if needed, start JupyterLab on notebooks/"
	@echo "make test        create the environment if needed, run pytest on tests/ and nbval on every notebook (fast mode)"
	@echo "make lint        ruff: lint and format check of the package, tests, tools, benchmarks, scripts"
	@echo "make format      ruff: fix what can be fixed and format the code"
	@echo "make teacher     build the teacher edition (solutions under each exercise) into build/teacher/"
	@echo "make slides      build one reveal.js deck per notebook into build/slides/ (FULL=1: full mode)"
	@echo "make hooks       register the git filter that keeps saved outputs out of commits (make lab does it)"
	@echo "make refresh     re-run notebooks in fast mode and store the outputs nbval compares (NB=path to limit)"
	@echo "make strip       clear stray outputs from notebooks (keeps the checked ones)"
	@echo "make benchmarks  run the scripts in benchmarks/"
	@echo "make gpu-check   on a CUDA machine: CUDA tests, notebook 07 on the GPU, benchmark, script under torchrun (<= 5 min)"

.tools/bin/uv:
	@echo "uv not found on PATH: installing it into .tools/ with pip"
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv

# --compile-bytecode: store .pyc files once at install; without them every kernel recompiles torch's
# lazily imported modules (seconds per notebook), notably where PYTHONDONTWRITEBYTECODE is set.
env: $(if $(findstring .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --compile-bytecode

lab: env hooks
	$(UV) run --locked jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

# Outputs saved in JupyterLab stay in your files but never reach a commit: git runs notebooks through
# tools/notebooks.py clean (the same strip as make strip) when it stages them.
hooks:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.course-notebook.clean ".venv/bin/python tools/notebooks.py clean" && \
	  git config filter.course-notebook.smudge cat && \
	  echo "git filter course-notebook registered: saved notebook outputs stay out of commits"; fi

teacher: env
	$(UV) run --locked python tools/editions.py teacher --out $(TEACHER)

# ruff (configured in pyproject.toml) over the Python files; notebooks are kept clean by tools/notebooks.py.
lint: env
	$(UV) run --locked ruff check
	$(UV) run --locked ruff format --check

format: env
	$(UV) run --locked ruff check --fix
	$(UV) run --locked ruff format

test: lint teacher
	COURSE_FAST=1 OMP_NUM_THREADS=1 $(UV) run --locked pytest -n $(JOBS) --dist loadfile tests $(TEACHER_NOTEBOOKS) $(PYTEST_NB)

slides: env
	mkdir -p $(SLIDES)
	COURSE_FAST=$(if $(FULL),0,1) $(UV) run --locked jupyter nbconvert --to slides --execute $(NOTEBOOKS) \
	  --output-dir $(SLIDES) --TagRemovePreprocessor.remove_input_tags hide-input \
	  --SlidesExporter.reveal_width=1280 --SlidesExporter.reveal_height=860

refresh: env
	$(UV) run --locked python tools/notebooks.py refresh $(NB)

strip: env
	$(UV) run --locked python tools/notebooks.py strip $(NB)

benchmarks: env
	@status=0; for script in $$(ls benchmarks/*.py | grep -v "/_"); do echo "== $$script"; $(UV) run --locked python $$script || status=1; done; exit $$status

# Everything that needs CUDA, with one summary (tools/gpu_check.py); exits 2 with a message without CUDA.
gpu-check: env
	OMP_NUM_THREADS=1 $(UV) run --locked python tools/gpu_check.py

clean:
	rm -rf .pytest_cache build runs checkpoints notebooks/runs notebooks/checkpoints
