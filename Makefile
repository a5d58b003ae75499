# audiocap: the two quick-start commands are `make demo` and `make test`.
# Both set everything up first (system packages when run as root, a virtualenv, the package).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
SHARED ?= ../shared
BIN := $(VENV)/bin
STAMP := $(VENV)/.audiocap-installed
APT_PACKAGES := default-jre-headless maven sox espeak-ng fluidsynth fluid-soundfont-gm chromium chromium-driver
PYTEST_ARGS ?=

.PHONY: setup system-deps demo demo-train test test-slow clean

# Debian packages: Java for METEOR/SPICE, Maven to fetch SPICE's CoreNLP, sound tools for the
# dataset builder, Chromium for the browser test of the web page.
system-deps:
	@bash scripts/system-deps.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,onnx,image]"
	# aisfx ships the pretrained audio tower; its pinned deps (numpy 1.23, librosa 0.9) do not install
	$(BIN)/python -m pip install --quiet --no-deps aisfx==0.1.2
	@touch $(STAMP)

setup: system-deps $(STAMP)
	@$(BIN)/audiocap metrics setup-spice || echo "warning: SPICE set-up failed (see the error above); SPICE and SPIDEr will be reported unavailable"

# Main job on the built-in default data, with the shipped models (falls back to training).
demo: setup
	$(BIN)/audiocap demo --shared $(SHARED)

# The same, training the demo's CLAP model and captioner from scratch.
demo-train: setup
	$(BIN)/audiocap demo --shared $(SHARED) --train

# Default test suite (what CI runs).
test: setup
	AUDIOCAP_SHARED=$(SHARED) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Longer checks, reported in notes.
test-slow: setup
	AUDIOCAP_SHARED=$(SHARED) $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
