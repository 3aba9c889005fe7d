# labkit — the two commands a newcomer needs are `make course` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.labkit-installed
# Notebook cells may train for a few minutes on 2 CPU cores.
NBVAL_TIMEOUT ?= 1200
PYTEST_ARGS ?=
# make student writes here and never replaces a file already there (it may hold a student's work)
STUDENT_OUT ?= student

.PHONY: help install course test test-extended unit nbval lab e2e e2e-deps bench doctor strip student clean

help:
	@echo "make course   install, then run every notebook on the embedded data (CPU) with a summary"
	@echo "make test     install, then unit tests + nbval over every notebook"
	@echo "make test-extended  the lessons that train a model, on seeds 0, 1 and 2 (make test runs the fast ones)"
	@echo "make lab      open JupyterLab on notebooks/"
	@echo "make unit     unit tests only;  make nbval  notebooks only;  make bench  benchmarks"
	@echo "make strip    strip volatile outputs from notebooks;  make doctor  environment report"
	@echo "make student  student versions of the notebooks (solutions replaced by stubs) in student/"
	@echo "make e2e      browser tests: every notebook run in JupyterLab in headless Chromium, widgets poked"

# The notebooks' run-time core plus JupyterLab/papermill ([lab]), the test tooling ([dev]) and the Kaggle client
# ([kaggle]); [e2e] (Playwright) comes from scripts/install_e2e.sh.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11-3.13 is needed (python3.11 recommended)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -e '.[lab,dev,kaggle,ray]'
	@touch $(STAMP)

install: $(STAMP)

course: install
	$(BIN)/labkit course

# The whole suite: unit tests and nbval over every notebook, then the browser end-to-end tests (tests/e2e;
# skipped with a reason if Chromium could not be installed, e.g. without apt-get) in a process of their own:
# after Playwright's event loop ran in the main thread, nbclient runs kernels from a helper thread and a notebook
# run could wait forever on a kernel that had gone idle (seen in tests/test_offline.py, 2026-12-03).
test: install
	-@VENV=$(VENV) bash scripts/install_e2e.sh || echo "make test: Chromium/Playwright not installed; tests/e2e will be skipped (see README)"
	MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/e2e -m "not extended" --durations=25 --nbval-lax \
	  --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg --nbval-cell-timeout=$(NBVAL_TIMEOUT) \
	  notebooks $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/e2e --durations=10 $(PYTEST_ARGS)

# What `make test` leaves out to stay under 30 minutes: the lessons that train a model, re-run on seeds 0, 1 and 2
# (tests/conftest.py lists them). `make test` runs the fast lesson sweeps on the same seeds and checks the default
# seed's verdicts through nbval.
test-extended: install
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -m extended --durations=25 $(PYTEST_ARGS)

unit: install
	MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/e2e -m "not extended" $(PYTEST_ARGS)

# Chromium (Debian's package) and Playwright, installed by the project's own script; no browser download.
e2e-deps: install
	VENV=$(VENV) bash scripts/install_e2e.sh

e2e: e2e-deps
	$(BIN)/python -m pytest tests/e2e -m e2e $(PYTEST_ARGS)

nbval: install
	MPLBACKEND=Agg $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg --nbval-cell-timeout=$(NBVAL_TIMEOUT) notebooks

lab: install
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

doctor: install
	$(BIN)/labkit doctor

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

strip: install
	$(BIN)/labkit strip notebooks/*.ipynb

# Student versions: every exercise's solution replaced by a stub (labkit/student.py), in a folder of their own.
student: install
	$(BIN)/labkit student notebooks/[0-9][0-9]_*.ipynb --out $(STUDENT_OUT)

clean:
	rm -rf runs/course .pytest_cache
