# Investigator: `make run` starts the app with demo data, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint venv dev browser clean-demo

run: $(VENV)/.runtime
	$(PY) manage.py serve

test: $(VENV)/.dev browser
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

venv: $(VENV)/.runtime
dev: $(VENV)/.dev

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Investigator needs Python 3.11 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --progress-bar on -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --progress-bar on -r requirements-dev.txt
	@touch $@

# System packages the tests use: Debian's Chromium for the browser tests (driven by Playwright, never a
# downloaded browser; it also brings the Pango libraries WeasyPrint renders PDFs with) and poppler-utils'
# pdftoppm to look at a rendered PDF. Installed here when missing and we may; otherwise the tests that
# need them are skipped with a message (and fail on CI). apt-get waits up to ten minutes for another apt or
# dpkg (an unattended upgrade) to let go of its lock rather than failing at once.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium poppler-utils >/dev/null; \
	  else echo "Chromium or pdftoppm missing; their tests will be skipped (sudo apt-get install chromium poppler-utils)"; fi; }

# Removes the generated demo data so the next `make run` makes and imports it afresh.
clean-demo:
	rm -rf var/demo
