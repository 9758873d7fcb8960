# Two commands for a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs what is missing. Where the system Python already
# has PyTorch (a GPU build, say), the venv reuses it instead of installing another.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gliograde-installed
TORCH_CPU ?= torch==2.13.0

.PHONY: demo test test-quick lint docs bench fuzz clean ohif

$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  if $(PYTHON) -c "import torch" 2>/dev/null; then \
	    echo "reusing the system PyTorch"; $(PYTHON) -m venv --system-site-packages $(VENV); \
	  else $(PYTHON) -m venv $(VENV); fi; fi
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_CPU)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gliograde demo

# One pytest process per core, a test file per process at a time (its module fixtures made once),
# the longest files first (tests/conftest.py: LONGEST_FIRST). One process more than the cores
# was tried: the end-to-end tests' child processes then fought for the cores (docs/results).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

# The tests not marked slow (none trains): under a minute on 2 cores (docs/development.md).
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Fuzzed inputs, each case in a child process with limits: 10,000 NIfTI (.nii.gz and .nii),
# label CSV, manifest and run-folder cases; 10,000 DICOM exports; pydicom's own test files.
fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz.py --cases 10000

# The docs site, into site/: strict (broken links fail), the tutorials executed, then checked.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python scripts/check_docs.py

# The OHIF viewer the browser tests read results in: npm's @ohif/app ships it built (about 200 MB,
# no build step); fetched once per machine into a cache outside the clone.
OHIF_VERSION ?= 3.13.2
OHIF_DIR ?= $(HOME)/.cache/gliograde/ohif-$(OHIF_VERSION)
ohif: $(OHIF_DIR)/dist/index.html
$(OHIF_DIR)/dist/index.html:
	rm -rf $(OHIF_DIR).tmp && mkdir -p $(OHIF_DIR).tmp
	cd $(OHIF_DIR).tmp && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null && tar xzf ohif-app-$(OHIF_VERSION).tgz
	rm -rf $(OHIF_DIR) && mkdir -p $(OHIF_DIR) && mv $(OHIF_DIR).tmp/package/dist $(OHIF_DIR)/dist && rm -rf $(OHIF_DIR).tmp

bench: $(STAMP)
	$(BIN)/gliograde bench --save bench.json

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts docs/tutorials
	$(BIN)/ruff format --check src tests scripts docs/tutorials
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-output site
