# Two commands a newcomer needs: `make run` (the main job) and `make test`.
# Each sets itself up (virtual environment, installs) on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/checkpoint-streams
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install run replay test unit lint fuzz bench broker-start broker-stop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,rocksdb]'
	touch $(STAMP)

install: $(STAMP)

## run: the main job, live: local broker + topics + worker, fed a bundled scenario
run: install
	$(PY) -m streams.demo

## replay: the same scenario offline, no broker needed
replay: install
	$(CLI) replay tests/scenarios/z22.jsonl --table

## test: lint, type check, then every test (unit, contract, integration on a real broker)
test: install lint
	PY=$(PY) bash tests/lanes.sh

unit: install
	$(PY) -m pytest -q -m "not integration"

fuzz: install  ## a million hostile inputs through the gate and the pipeline core (outside CI)
	$(PY) -m bench.fuzz --inputs $${FUZZ_INPUTS:-1000000} --workers 2

lint: install
	$(VENV)/bin/ruff check streams tests deploy/k8s $(wildcard bench)
	$(VENV)/bin/mypy

## bench: benchmark on a running local broker (BROKER=host:port, QUICK=1 for the ~2 min run)
bench: install
	$(PY) -m bench.run --broker $(or $(BROKER),127.0.0.1:9092) $(if $(QUICK),--quick)

broker-start: install
	$(CLI) broker start

broker-stop:
	bash deploy/broker.sh stop

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
