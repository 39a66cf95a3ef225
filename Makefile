# OneTimeShare. `make run` serves the app on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := cd django_backend && ../$(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run migrate test e2e lint format bench clean

# The virtualenv is rebuilt whenever the pinned requirements change.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# axe-core, injected by the browser tests' accessibility check (pinned in e2e/package-lock.json).
E2E_AXE := e2e/node_modules/axe-core/axe.min.js
$(E2E_AXE): e2e/package.json e2e/package-lock.json
	npm ci --prefix e2e --no-audit --no-fund
	touch $@

migrate: install
	$(MANAGE) migrate --noinput

# The web server, a Celery worker and beat, together (Procfile); Ctrl-C stops them all.
# gunicorn with threads: a slow upload or download holds a thread, not a whole worker, and
# is never killed by the worker timeout. Access logs stay off: paths carry secrets.
run: migrate
	$(MANAGE) collectstatic --noinput --verbosity 0
	WEB_BIND=$(HOST):$(PORT) $(BIN)/honcho start --no-prefix -f Procfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install lint $(E2E_AXE)
	bash scripts/test.sh

# Only the browser tests (Debian's Chromium at /usr/bin/chromium, or CHROMIUM_PATH).
e2e: install $(E2E_AXE)
	$(BIN)/pytest -m e2e django_backend/tests_e2e

bench: install
	$(BIN)/python bench/transfer.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache e2e/node_modules
