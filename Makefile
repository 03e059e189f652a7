# bihuan: `make run` runs the whole system on embedded defaults, `make test` runs the tests.
# Both create or update .venv and install what they need.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test demo bench install clean chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "bihuan needs Python 3.11, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m cli.main run

# The dashboard's browser tests drive Debian's chromium (never a browser Playwright downloads),
# with a Chinese font so that their screenshots can be read.
chromium:
	@if ! command -v chromium >/dev/null || ! fc-list :lang=zh | grep -q .; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei; fi

# The runner exits with pytest's own status, even if the SDK runtime crashes at interpreter exit.
test: $(STAMP) chromium
	$(PY) tests/run.py $(ARGS)

demo: $(STAMP)
	$(PY) -m cli.main demo

# Small defaults, a few minutes; bench/README.md tells how to run each at full size.
bench: $(STAMP)
	$(PY) bench/all.py

clean:
	rm -rf $(VENV) var .pytest_cache
