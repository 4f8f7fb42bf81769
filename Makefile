# fastsd developer targets. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
export FASTSD_DATA ?= $(CURDIR)/data

.PHONY: install test lint demo bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PIN)
	$(PIP) install --quiet -e '.[all,dev]'
	touch $(STAMP)

test: install browser
	$(PY) -m pytest -q

# The report test renders a page in headless Chromium (Debian's package); install it when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: could not install chromium; the browser test of the report will be skipped"

lint: install
	$(VENV)/bin/ruff check fastsd tests scripts

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) scripts/bench_cli.py

clean:
	rm -rf $(VENV) data .pytest_cache

.PHONY: generate
generate: install  ## regenerate checked-in artefacts: compiled registry, JSON schemas
	$(PY) scripts/compile_registry.py
	$(PY) scripts/gen_schemas.py
