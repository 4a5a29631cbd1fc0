# The README's two commands: `make serve` and `make test`. Each installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.ray-installed
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= data

.PHONY: install browser serve test index clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned and installed first: an unpinned one pulls a CUDA build of several GB.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Ray (the optional extra hoidap[ray]) for its tests: `make serve` does not need it.
$(RAY_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $(RAY_STAMP)

# Debian's Chromium for the browser test (Playwright drives /usr/bin/chromium; its own download fails here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	  else echo "chromium is not installed and this user cannot apt-get it: the browser test will be skipped"; fi; }

# corpus/ is indexed when there is no index this version can serve (none yet, damaged, or from an older
# version: its documents are embedded again with corpus/).
index: install
	@$(BIN)/hoidap info --data-dir $(DATA_DIR) >/dev/null 2>&1 || $(BIN)/hoidap index corpus --data-dir $(DATA_DIR)

serve: install index
	$(BIN)/hoidap serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: install $(RAY_STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DATA_DIR) *.egg-info
