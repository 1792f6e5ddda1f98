# Every target sets itself up from nothing: a fresh clone needs only python3 (>= 3.10).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-integrations fuzz venv clean

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

# The writers' adapters against the real frameworks, in a venv of their own: CPU builds only,
# exact versions from tests/integrations/constraints.txt. check_install.py fails the target
# when a framework is missing or a CUDA build came in; the tests then skip nothing.
IVENV := .venv-integrations
IBIN := $(IVENV)/bin
INTEGRATIONS := tests/integrations

$(IBIN)/python:
	$(PYTHON) -m venv $(IVENV)
	$(IBIN)/python -m pip install --quiet --upgrade pip

$(IVENV)/.installed: pyproject.toml $(INTEGRATIONS)/constraints.txt | $(IBIN)/python
	$(IBIN)/python -m pip install --quiet -c $(INTEGRATIONS)/constraints.txt \
		-e ".[test,torch,lightning,keras,transformers]"
	$(IBIN)/python $(INTEGRATIONS)/check_install.py $(INTEGRATIONS)/constraints.txt
	touch $@

test-integrations: $(IVENV)/.installed
	KERAS_BACKEND=torch LOSSACC_REQUIRED_FRAMEWORKS="torch lightning keras transformers" \
		$(IBIN)/python -m pytest $(INTEGRATIONS) -rs

clean:
	rm -rf $(VENV) $(IVENV) build *.egg-info
