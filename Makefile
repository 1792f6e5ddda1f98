# Every target sets itself up from nothing: a fresh clone needs only python3 (>= 3.10).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-remote test-integrations test-browser chromium docs-screenshot fuzz hostile venv clean

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
# The cases' per-epoch cache goes to a folder of their own, removed afterwards (never the user's).
hostile: $(VENV)/.installed-test
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && export LOSSACC_CACHE_DIR="$$cache" && \
	ulimit -v $(HOSTILE_MEMORY_KB) && \
		$(BIN)/python -m tests.hostile_run --timeout $(HOSTILE_TIMEOUT) && \
		$(BIN)/python -m tests.fuzz_inputs --cases $(HOSTILE_FUZZ_CASES) --memory 0

# Remote storage (s3://) against a real S3-compatible server that the tests start on localhost
# (moto's server mode), in a venv of its own. Fails, never skips, when the server cannot start.
RVENV := .venv-remote
RBIN := $(RVENV)/bin

$(RBIN)/python:
	$(PYTHON) -m venv $(RVENV)
	$(RBIN)/python -m pip install --quiet --upgrade pip

$(RVENV)/.installed: pyproject.toml | $(RBIN)/python
	$(RBIN)/python -m pip install --quiet -e ".[test,s3]" "moto[server]>=5.0" "fsspec>=2023.6"
	touch $@

test-remote: $(RVENV)/.installed
	LOSSACC_REMOTE_TESTS=required $(RBIN)/python -m pytest tests/remote -p no:cacheprovider -rs

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

# The HTML report in a real browser: Debian's Chromium (installed here when missing: CI runs as root;
# a browser test tool's download of its own browser is never used) driven by Playwright from a venv
# of its own. Fails, never skips, when the browser cannot be had.
BROWSER_VENV := .venv-browser
BROWSER_BIN := $(BROWSER_VENV)/bin

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "test-browser: chromium is missing and this user cannot install it (apt-get install chromium)" >&2; exit 1; fi; \
	  echo "installing Debian's chromium"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

$(BROWSER_BIN)/python:
	$(PYTHON) -m venv $(BROWSER_VENV)
	$(BROWSER_BIN)/python -m pip install --quiet --upgrade pip

$(BROWSER_VENV)/.installed: pyproject.toml | $(BROWSER_BIN)/python
	$(BROWSER_BIN)/python -m pip install --quiet -e ".[test,report,browser]"
	touch $@

test-browser: chromium $(BROWSER_VENV)/.installed
	LOSSACC_BROWSER_TESTS=required $(BROWSER_BIN)/python -m pytest tests/browser -p no:cacheprovider

# The README's picture of the report, taken by the browser test.
docs-screenshot: chromium $(BROWSER_VENV)/.installed
	LOSSACC_BROWSER_TESTS=required LOSSACC_SCREENSHOT=$(CURDIR)/docs/report.png \
		$(BROWSER_BIN)/python -m pytest tests/browser -p no:cacheprovider -k screenshot

clean:
	rm -rf $(VENV) $(RVENV) $(IVENV) $(BROWSER_VENV) build *.egg-info
