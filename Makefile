# fastsd developer targets. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

.PHONY: install test lint demo bench clean browser studio-screenshots

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

# The studio's browser test, saving the screenshots docs/studio.md shows.
studio-screenshots: install browser
	FASTSD_SCREENSHOTS=docs/studio $(PY) -m pytest -q tests/studio/test_browser.py

lint: install
	$(VENV)/bin/ruff check fastsd tests scripts

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) scripts/bench_cli.py
	$(PY) scripts/bench_caption.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_convert.py
	$(PY) scripts/bench_download.py

clean:
	rm -rf $(VENV) data .pytest_cache

.PHONY: generate
generate: install  ## regenerate checked-in artefacts: compiled registry, JSON schemas
	$(PY) scripts/compile_registry.py
	$(PY) scripts/gen_schemas.py

# --- container images (images/, compose/) ---
REGISTRY ?= ghcr.io/fastsd
VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' fastsd/__init__.py)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGES := base trainer converter captioner webui

.PHONY: images push lock lint-images

# base first: the other images build FROM it.
images:
	for name in $(IMAGES); do \
	  DOCKER_BUILDKIT=1 docker build -f images/$$name/Dockerfile \
	    --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
	    --build-arg BASE_IMAGE=$(REGISTRY)/fastsd-base:$(VERSION) \
	    -t $(REGISTRY)/fastsd-$$name:$(VERSION) . || exit 1; \
	done

push:
	for name in $(IMAGES); do docker push $(REGISTRY)/fastsd-$$name:$(VERSION) || exit 1; done

lock: install
	$(PY) scripts/lock_images.py

lint-images: install
	$(VENV)/bin/hadolint images/*/Dockerfile
	$(VENV)/bin/shellcheck -x images/*/*.sh
