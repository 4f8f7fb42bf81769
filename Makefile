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
	# PYTHONWARNINGS: setuptools' "Editable installation" notice is advice for packagers, not an error.
	PYTHONWARNINGS=ignore $(PIP) install --quiet -e '.[all,dev]'
	$(PY) scripts/install_skypilot.py  # its click/uvicorn caps beside ours: see the script
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

# FAMILY=<registry id> (z-image, flux2-klein-4b, qwen-image...): the demo on a tiny model of that family
demo: install
	$(PY) scripts/demo.py $(if $(FAMILY),--family $(FAMILY))

bench: install
	$(PY) scripts/bench_cli.py
	$(PY) scripts/bench_caption.py
	$(PY) scripts/bench_caption_vlm.py
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
# What `make images` builds; webui and comfyui clone their repositories from GitHub (or, with
# MIRROR_BUILD_ARGS from scripts/git_mirror.sh, from local mirrors: `make webui-here`, `make comfyui-here`).
IMAGES ?= base trainer converter captioner pod invokeai webui comfyui
MIRRORED := webui comfyui
BUILDABLE_HERE := base trainer converter captioner pod invokeai
BASE_OS ?= debian:bookworm-slim
# DOCKER: a client that builds with BuildKit (docker-ce with buildx, or Debian's docker.io 20.10).
DOCKER ?= docker
# NETWORK=host for machines where builds may only use the host network; PIP_CA=/path/ca.pem
# for a proxy that intercepts TLS (given to pip as a build secret, never stored in a layer).
NETWORK ?=
PIP_CA ?=
BUILD_FLAGS = --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
  --build-arg BASE_OS=$(BASE_OS) --build-arg BASE_IMAGE=$(REGISTRY)/fastsd-base:$(VERSION) \
  $(if $(NETWORK),--network $(NETWORK)) $(if $(PIP_CA),--secret id=pip_ca$(comma)src=$(PIP_CA))
comma := ,
DESCRIPTION_trainer := Fine-tunes Stable Diffusion (DreamBooth, LoRA)
DESCRIPTION_converter := Converts between diffusers folders and single-file checkpoints
DESCRIPTION_captioner := Prepares photos and captions them with BLIP
DESCRIPTION_pod := The studio for RunPod and Vast.ai pods: every workload in one image

.PHONY: images push lock lint-images engine base-os images-here test-images \
  $(addsuffix -here,$(MIRRORED)) $(addsuffix -if-mirrored,$(MIRRORED))

# A Docker engine with Compose v2 (installs and starts Debian's docker.io where none answers).
engine:
	bash scripts/docker_engine.sh

# The OS image the base builds FROM: pulled, or made locally (debootstrap) where no registry answers.
base-os:
	DOCKER=$(DOCKER) bash scripts/debian_base.sh $(BASE_OS)

# base first: the other images build FROM it.
images: base-os
	for name in $(IMAGES); do \
	  case $$name in trainer|converter|captioner|pod) \
	    file=images/workload/Dockerfile; extra="--build-arg WORKLOAD=$$name";; \
	  *) file=images/$$name/Dockerfile; extra="";; esac; \
	  case $$name in pod) extra="$$extra --target pod";; webui|comfyui) extra="$(MIRROR_BUILD_ARGS)";; esac; \
	  case $$name in trainer) desc="$(DESCRIPTION_trainer)";; converter) desc="$(DESCRIPTION_converter)";; \
	    captioner) desc="$(DESCRIPTION_captioner)";; pod) desc="$(DESCRIPTION_pod)";; *) desc="";; esac; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build -f $$file $(BUILD_FLAGS) $$extra \
	    $${desc:+--build-arg "DESCRIPTION=$$desc"} -t $(REGISTRY)/fastsd-$$name:$(VERSION) . || exit 1; \
	done

# Every image that can be built here, on this machine's engine (started when none answers), with
# host networking and the host's CA bundle for pip (a TLS-intercepting proxy).
ENGINE_CLIENT = eval "$$(bash scripts/docker_engine.sh | tail -n 1)"
images-here:
	$(ENGINE_CLIENT) && $(MAKE) images IMAGES="$(BUILDABLE_HERE)" DOCKER="$$DOCKER" NETWORK=$(or $(NETWORK),host) \
	    PIP_CA=$(or $(PIP_CA),$(wildcard /etc/ssl/certs/ca-certificates.crt))

# The webui (A1111) and comfyui images, their GitHub repositories fetched from local mirrors served
# on 127.0.0.1 (git daemon, and HTTP for the CLIP archive) for the build's length:
# scripts/git_mirror.sh. Fails (status 3) when GIT_MIRRORS lack one of them; NAME-if-mirrored then
# says so and builds nothing.
GIT_MIRRORS ?= ../shared/git
export GIT_MIRRORS
$(addsuffix -here,$(MIRRORED)): %-here:
	$(ENGINE_CLIENT) && export GIT_MIRROR_DOCKERFILE=images/$*/Dockerfile && \
	  args="$$(bash scripts/git_mirror.sh start)" || exit $$?; \
	  trap 'bash scripts/git_mirror.sh stop' EXIT; \
	  $(MAKE) images IMAGES=$* DOCKER="$$DOCKER" NETWORK=$(or $(NETWORK),host) MIRROR_BUILD_ARGS="$$args" \
	    PIP_CA=$(or $(PIP_CA),$(wildcard /etc/ssl/certs/ca-certificates.crt))

$(addsuffix -if-mirrored,$(MIRRORED)): %-if-mirrored:
	@if GIT_MIRROR_DOCKERFILE=images/$*/Dockerfile bash scripts/git_mirror.sh check; then \
	  $(MAKE) --no-print-directory $*-here; else \
	  echo "$* image: not built here: the mirrors lack the repositories named above (GIT_MIRRORS=$(GIT_MIRRORS))"; fi

# Builds every image that can be built here, then runs the pipeline in them through the host CLI.
test-images: install images-here webui-if-mirrored comfyui-if-mirrored
	$(ENGINE_CLIENT) && { FASTSD_IMAGE_TESTS=1 FASTSD_TAG=$(VERSION) $(PY) -m pytest -q -p no:cacheprovider \
	  tests/images/containers; status=$$?; $$DOCKER image prune --force >/dev/null; exit $$status; }

push:
	for name in $(IMAGES); do docker push $(REGISTRY)/fastsd-$$name:$(VERSION) || exit 1; done

lock: install
	$(PY) scripts/lock_images.py

lint-images: install
	$(VENV)/bin/hadolint images/*/Dockerfile
	$(VENV)/bin/shellcheck -x images/*/*.sh
