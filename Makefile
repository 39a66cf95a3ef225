# OneTimeShare. `make run` serves the app on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := cd django_backend && ../$(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev run migrate test e2e lint format bench clean messages

# The virtualenv: serving needs only the runtime requirements; the test and lint tools
# come on top for `make test`. Each layer is reinstalled when its pinned list changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(BIN)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev: requirements.txt requirements-dev.txt $(BIN)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.runtime
install-dev: $(BIN)/.dev

# Static files are collected again only when one of them changed.
STATIC_SOURCES := $(shell find django_backend/apps -path '*/static/*' -type f 2>/dev/null)
var/static/staticfiles.json: $(STATIC_SOURCES) $(BIN)/.runtime
	$(MANAGE) collectstatic --noinput --verbosity 0

# axe-core, injected by the browser tests' accessibility check (pinned in e2e/package-lock.json).
E2E_AXE := e2e/node_modules/axe-core/axe.min.js
$(E2E_AXE): e2e/package.json e2e/package-lock.json
	npm ci --prefix e2e --no-audit --no-fund
	touch $@

# Translations (docs/translations.md). The compiled catalogues (.mo) are committed, so that
# `make run` works where gettext is not installed, and a test holds them to their .po files;
# where gettext is installed, a .po newer than its .mo is compiled again here.
PO_FILES := $(wildcard django_backend/locale/*/LC_MESSAGES/*.po)
MO_FILES := $(PO_FILES:.po=.mo)
%.mo: %.po
	@if command -v msgfmt >/dev/null; then msgfmt --check-format -o $@ $<; \
	else echo "msgfmt (gettext) not found: $@ stays as committed"; fi

# After a message changed in a page, a module or a script: extract them all into every
# catalogue, translate what is new or marked fuzzy, then `make messages` again (gettext).
messages: install
	$(MANAGE) makemessages --all --domain django --no-obsolete --add-location file --ignore 'tests*'
	$(MANAGE) makemessages --all --domain djangojs --no-obsolete --add-location file --ignore 'tests*'
	$(MANAGE) compilemessages

migrate: install
	$(MANAGE) migrate --noinput

# The web server, a Celery worker and beat, together (Procfile); Ctrl-C stops them all.
# gunicorn with threads: a slow upload or download holds a thread, not a whole worker, and
# is never killed by the worker timeout. Access logs stay off: paths carry secrets.
run: migrate var/static/staticfiles.json $(MO_FILES)
	WEB_BIND=$(HOST):$(PORT) $(BIN)/python scripts/foreground.py $(BIN)/honcho start --no-prefix -f Procfile

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd django_backend && ../$(BIN)/lint-imports --config ../pyproject.toml --no-cache

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install-dev lint $(E2E_AXE) $(MO_FILES)
	bash scripts/test.sh

# Only the browser tests (Debian's Chromium at /usr/bin/chromium, or CHROMIUM_PATH).
e2e: install-dev $(E2E_AXE) $(MO_FILES)
	$(BIN)/pytest -m e2e django_backend/tests_e2e

bench: install-dev
	$(BIN)/python bench/transfer.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache e2e/node_modules
