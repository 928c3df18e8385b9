# make demo: the site on http://127.0.0.1:8000 with every service, no Docker.
# make test: the test suite against real local services (MariaDB via DATABASE_URL).
# A bare Debian machine needs apt packages first: sudo .ci/run installs them (and tests).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
NODE_STAMP := node_modules/.package-lock.json

# mysqlclient builds from source: it needs pkg-config and the MariaDB client headers.
APT_HINT := sudo apt-get install -y pkg-config libmariadb-dev   (or run: sudo .ci/run)

.PHONY: demo test lint venv node

# WORKERS: live worker processes (each a Celery worker on queue `live`).
WORKERS ?= 1

demo: venv
	WORKERS=$(WORKERS) $(PY) scripts/stack.py demo

test: venv node
	DATABASE_URL=$${DATABASE_URL:-mysql://root@127.0.0.1:3306/cinegraph} \
	CHROMIUM_PATH=$${CHROMIUM_PATH:-/usr/bin/chromium} \
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .

venv: $(STAMP)

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Install Python 3.11 (Debian 12: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	@$(PY) -c "import MySQLdb" 2>/dev/null || pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || { echo "error: mysqlclient needs pkg-config and MariaDB client headers to build. Install them: $(APT_HINT)"; exit 1; }
	$(PY) -m pip install -r requirements.txt
	touch $@

node: $(NODE_STAMP)

$(NODE_STAMP): package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found. Install Node 20 and npm (or run: sudo .ci/run)"; exit 1; }
	npm ci --no-audit --no-fund
	touch $@
