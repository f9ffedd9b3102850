# RoleDesk developer and operator commands. `make run` and `make test` are the README's two.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3

.PHONY: run test setup setup-dev static lint typecheck pytest browser bench permissions clean

run: setup static  ## set everything up and serve RoleDesk against the embedded AWS sandbox
	$(VENV)/bin/roledesk serve --sandbox

test: setup-dev static  ## lint, type-check and run every test (browser journeys included)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/roledesk permissions --check
	$(PY) -m pytest

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

setup: $(VENV)/bin/python
	$(PIP) install --quiet -e .

setup-dev: $(VENV)/bin/python
	$(PIP) install --quiet -e '.[dev]'

static: node_modules/.package-lock.json  ## copy the pinned front-end files into static/vendor
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

browser:
	$(PY) -m pytest -m browser

permissions:
	$(VENV)/bin/roledesk permissions --write

clean:
	rm -rf static/vendor node_modules
