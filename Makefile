# Investigator: `make run` starts the app with demo data, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint venv dev clean-demo

run: $(VENV)/.runtime
	$(PY) manage.py serve

test: $(VENV)/.dev
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

# Removes the generated demo data so the next `make run` makes and imports it afresh.
clean-demo:
	rm -rf var/demo
