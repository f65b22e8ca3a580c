# Two commands do everything on a fresh clone: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint typecheck unit install clean bench bench-capacity screenshots

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Hatchery needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[server,dev]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/hatchery serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# Two pytest-xdist workers, a test module to each at a time (a module's server is started once
# a backend): about 12 minutes instead of 20 on two cores. PYTEST_PARALLEL= runs them one by one.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

test: lint typecheck
	bash scripts/ensure-postgres
	bash scripts/ensure-redis
	bash scripts/ensure-videogen-sdk
	bash scripts/ensure-chromium
	bash scripts/ensure-prometheus
	$(BIN)/pytest -q $(PYTEST_PARALLEL)

# The request path and the task lifecycle against the bare floors, on SQLite and PostgreSQL
# (about 16 minutes; BENCH_ARGS=--quick for about 5; BENCH_ARGS="--only usage" for one scenario);
# see docs/benchmarks.md.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[server,dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	bash scripts/ensure-postgres
	$(BIN)/python -m bench.suite $(BENCH_ARGS)

# One worker process with 5,000 upstream jobs of 30 s in flight (about 2 minutes); see docs/benchmarks.md.
bench-capacity: $(STAMP)
	$(BIN)/python -m bench.capacity --tasks 5000 --job-seconds 30

# Screenshots of every dashboard page into docs/dashboard/ (Chromium from the machine).
screenshots: $(STAMP)
	bash scripts/ensure-chromium
	$(BIN)/python scripts/dashboard_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
