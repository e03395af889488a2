# `make demo` and `make test` are the two commands a newcomer needs. Both set up .venv once
# (re-installing only when pyproject.toml or constraints.txt changes) and are safe to run again.
# constraints.txt pins the tested versions, so a fresh clone installs what the figures came from.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# the graph's stages call `python`, `dvc` runs them: both must be the venv's
RUN := PATH="$(BIN):$$PATH" YOLO_CONFIG_DIR="$(CURDIR)/.yolo"

.PHONY: setup demo study check plan test test-fast lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

demo: setup
	$(RUN) dvc repro
	@echo
	@cat outputs/eval/report.md

# study.translators x study.seeds (+ the oracle) as queued DVC experiments; reuses finished ones
study: setup
	$(RUN) python -m pipeline.study
	@echo
	@cat outputs/study/report.md

# before a run on the real data (README "Quickstart on the real datasets"): what it would read,
# and what a preset would cost (frames, disk, GPU-hours)
PRESET ?= presets/original_study.yaml
check: setup
	$(RUN) python -m pipeline.check

plan: setup
	$(RUN) python -m pipeline.preset $(PRESET) --plan

# Two pytest workers (pytest-xdist): a test averages about one core (a stage process waits on
# DVC, a training on its data loader), so CI's 2 cores run two at once. Whole files per worker:
# a file's tests share module fixtures (a trained detector, a tiny repo). Files go out in the
# order tests/conftest.py sorts them (the longest first), not xdist's by-test-count order.
# The 15 slowest are listed at the end (CI's log: where the time goes).
PYTEST := pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15

test: setup
	$(RUN) $(PYTEST)

# the suite without the end-to-end tests that train real models for minutes (@pytest.mark.slow)
test-fast: setup
	$(RUN) $(PYTEST) -m "not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf outputs .yolo
