# Set-up and everyday commands. Every target creates .venv and installs what it needs first.
#   make demo   answer examples/question.wav offline -> out/reply.mp4 (no API keys)
#   make test   run the test suite (the command CI runs); make test-slow  the long runs
#   make lint   ruff + mypy;  make docs   build the documentation (strict)
#   make bench  run the benchmarks

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lexperience-installed
# llama-cpp-python compiles from source: build it for any x86-64 CPU so pip can cache the wheel.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export HF_HUB_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup demo test test-slow lint docs bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[all,dreamtalk,test,docs,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lexperience reply examples/question.wav -o out/

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python benchmarks/offline.py --runs 5
	$(BIN)/python benchmarks/avatar.py --runs 5
	$(BIN)/python benchmarks/latency.py --runs 5
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) site out .pytest_cache .mypy_cache .ruff_cache
