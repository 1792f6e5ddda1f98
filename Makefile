# Every target sets itself up from nothing: a fresh clone needs only python3 (>= 3.10).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz hostile venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/lossacc analyze sample_data/balanced

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The mutation fuzzer at length: FUZZ_CASES damaged files (another stream: FUZZ_SEED=N).
FUZZ_CASES ?= 5000
fuzz: $(VENV)/.installed-test
	LOSSACC_FUZZ_CASES=$(FUZZ_CASES) $(if $(FUZZ_SEED),LOSSACC_FUZZ_SEED=$(FUZZ_SEED)) \
		$(BIN)/python -m pytest tests/test_fuzz.py -rxf

# The whole hardening corpus, each case in a process of its own with a time limit, then the
# fuzzer: all under a 2 GB address-space limit (no kill, no hang, no traceback).
HOSTILE_MEMORY_KB ?= 2097152
HOSTILE_TIMEOUT ?= 60
HOSTILE_FUZZ_CASES ?= 2000
hostile: $(VENV)/.installed-test
	ulimit -v $(HOSTILE_MEMORY_KB) && \
		$(BIN)/python -m tests.hostile_run --timeout $(HOSTILE_TIMEOUT) && \
		$(BIN)/python -m tests.fuzz_inputs --cases $(HOSTILE_FUZZ_CASES) --memory 0

clean:
	rm -rf $(VENV) build *.egg-info
