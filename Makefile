# The two commands: `make run` and `make test`. Everything else is a helper of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
URL ?= http://127.0.0.1:5000
REPORT ?= reports/conformance
# Debian packages the test suite drives as real peers.
DEBIAN_TOOLS := skopeo docker-registry podman buildah
# Azurite (the Azure Storage emulator) from the npm registry, for the azure driver's tests.
AZURITE_VERSION := 3.37.0
AZURITE := .cache/azurite/node_modules/.bin/azurite-blob

.PHONY: run test lint typecheck check conformance bench debian-tools azurite clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[s3,gcs,azure]' --group dev
	touch $@ $(VENV)/.installed-run

## run: serve on 127.0.0.1:5000 with storage in ./data
run: $(VENV)/.installed-run
	$(VENV)/bin/arca serve

## test: the whole test suite and the conformance suite (against arca and the reference)
test: $(STAMP) debian-tools azurite
	$(PY) -m pytest tests conformance -p no:cacheprovider

azurite: $(AZURITE)

$(AZURITE):
	mkdir -p .cache/azurite
	npm install --silent --no-audit --no-fund --prefix .cache/azurite azurite@$(AZURITE_VERSION)

debian-tools:
	@missing=""; for pkg in $(DEBIAN_TOOLS); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

## conformance: run the conformance suite against URL, reports in REPORT
conformance: $(STAMP) debian-tools
	mkdir -p $(REPORT)
	$(PY) -m pytest conformance -p no:cacheprovider --registry-url $(URL) --report-dir $(REPORT) --junitxml=$(REPORT)/junit.xml

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests conformance bench
	$(VENV)/bin/ruff format --check src tests conformance bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## check: ruff (lint, format) and mypy --strict on src/ and tests/ (what .ci/run runs first)
check: lint typecheck

## bench: arca beside the reference registry and the machine (sendfile, hashing); issue 15 ratio table
bench: $(STAMP) debian-tools
	$(PY) bench/registry_bench.py --compare

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache
