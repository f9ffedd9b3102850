# RoleDesk developer and operator commands. `make run` and `make test` are the README's two.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3

.PHONY: run test setup setup-dev static migrate first-start-note lint typecheck pytest browser bench permissions clean managed-policy-descriptions

# Stamp files record what is installed, so a start with nothing changed installs nothing
# (issue 13: `make run` used to reinstall the package on every start, ~16 s).
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev
STATIC_STAMP := static/vendor/.copied

run: first-start-note setup static migrate  ## set up and serve RoleDesk against the embedded AWS sandbox
	$(VENV)/bin/roledesk serve --sandbox

first-start-note:
	@if [ ! -f $(INSTALLED) ] || [ ! -f $(STATIC_STAMP) ]; then \
	  echo "First start: creating $(VENV) and installing Python and front-end packages."; \
	  echo "This takes about 2 to 3 minutes (less with a warm pip cache); later starts take seconds."; \
	  echo "The one-time setup link for the first admin is printed, in a box, once RoleDesk is up."; \
	fi

# Migrations for whatever database ROLEDESK_DATABASE_URL names (SQLite or PostgreSQL).
migrate: setup
	$(VENV)/bin/roledesk db upgrade

test: setup-dev static  ## lint, type-check and run every test (browser journeys included)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/roledesk permissions --check
	$(PY) -m pytest -n auto --dist loadfile

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	touch $@

$(INSTALLED_DEV): pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(INSTALLED)

setup: $(INSTALLED)

setup-dev: $(INSTALLED_DEV)

static: $(STATIC_STAMP)  ## copy the pinned front-end files into static/vendor

$(STATIC_STAMP): node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css
	touch $@

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

# AWS managed policy descriptions (step 2's Description column): ListPolicies leaves them out,
# so a copy of AWS's text is vendored from the npm package iam-floyd (app/policy/vendor_descriptions.py).
managed-policy-descriptions: setup
	$(PY) -m app.policy.vendor_descriptions
