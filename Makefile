# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or run: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,test]'
	@touch $(STAMP)

run: setup
	$(PY) -m embedded.run

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not devserver"

# Benchmark on the embedded defaults (bench/README.md): SCALE=tiny|small|full, ARGS for more options.
SCALE ?= small
bench: setup
	$(PY) -m pip install --quiet 'py-spy>=0.4'  # the [bench] extra: profiles the worker
	$(PY) -m bench.run --scale $(SCALE) $(ARGS)

lint: setup
	$(PY) -m pip install --quiet ruff
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .data
