# The two set-up commands: `make demo` and `make test`. Each creates .venv when missing
# and (re)installs the project into it when pyproject.toml changes.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_HOME := $(CURDIR)/airflow_home
# A project-local Airflow: SQLite in airflow_home/, DAGs from dags/, one BLAS thread per trial process.
AIRFLOW_ENV := AIRFLOW_HOME=$(DEMO_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

.PHONY: demo test test-long browser bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The dashboard's browser test drives Debian's chromium through Playwright (a test extra);
# `playwright install` would download browsers and is never run.
browser: $(STAMP)
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The long variants of the reliability suite: more fuzz examples, every crash pass, 10,000 trials.
test-long: $(STAMP)
	$(BIN)/python -m pytest -q -m long

$(DEMO_HOME)/airflow.db: | $(STAMP)
	mkdir -p $(DEMO_HOME)
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate > $(DEMO_HOME)/migrate.log 2>&1 || (tail -30 $(DEMO_HOME)/migrate.log; exit 1)

# The demo DAG tunes the seed MLP (examples/mlp) with Hyperband on local trial processes.
# Decisions stream to the terminal; Airflow's full log goes to airflow_home/demo.log.
demo: $(STAMP) $(DEMO_HOME)/airflow.db
	@echo "Running DAG hyperband_local_demo (airflow dags test); full log: $(DEMO_HOME)/demo.log"
	@$(AIRFLOW_ENV) $(BIN)/airflow dags test hyperband_local_demo 2>&1 | tee $(DEMO_HOME)/demo.log \
		| grep --line-buffered -oE "trial [0-9]+: (launch|stop|promote|completed|stopped|failed)[^[]*|tuning job: (stopping|finish)[^[]*" \
		|| (echo "the demo DAG failed; the end of its log:"; tail -40 $(DEMO_HOME)/demo.log; exit 1)
	@grep -q "DagRun Finished.*state=success" $(DEMO_HOME)/demo.log || (tail -40 $(DEMO_HOME)/demo.log; exit 1)
	@echo
	@$(BIN)/hb-tune show $(DEMO_HOME)/hyperband

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

# Benchmarks against Random, Bayesian and the peers (benchmarks/run.py); one BLAS thread per process.
# bench-quick: a few minutes, prints the table, writes benchmarks/results/quick/.
# bench: ~70 minutes (plus 30-45 the first time, for the MLP curve cache), regenerates
# benchmarks/results/RESULTS.md and the plots.
# bench-latency: every NAS block (3 data sets, 5 workers) under ideal and the SageMaker profiles, ours and the
# peers side by side (benchmarks/latency.py); about 15 minutes on 2 cores; writes benchmarks/results/LATENCY.md.
.PHONY: bench bench-quick bench-latency
bench-latency: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/latency.py --seeds 8 \
		--out benchmarks/results/LATENCY.md

bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run.py --profile quick

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run.py --profile bench

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache build *.egg-info
