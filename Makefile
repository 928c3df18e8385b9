# make demo: the site on http://127.0.0.1:8000 with every service, no Docker.
# make test: the test suite against real local services: MariaDB at DATABASE_URL when it lets
# root in there, else a private mariadbd the tests start and stop (tests/conftest.py).
# Each installs the Debian packages it lacks through scripts/system_packages.sh (the script
# .ci/run uses): as root or with passwordless sudo it installs them, otherwise it prints the
# one command to run. The checks here are cheap, so an equipped machine never calls it.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
NODE_STAMP := node_modules/.package-lock.json
CHROMIUM_PATH ?= /usr/bin/chromium

# On a bare machine the first missing piece installs everything the goal needs, in one apt run.
SYSTEM_PACKAGES := PYTHON=$(PYTHON) bash scripts/system_packages.sh $(if $(filter test chromium mariadb,$(MAKECMDGOALS)),test,demo)

.PHONY: demo test lint venv node chromium mariadb redis

# WORKERS: live worker processes (each a Celery worker on queue `live`).
WORKERS ?= 1

demo: venv node redis
	WORKERS=$(WORKERS) $(PY) -m devstack demo

test: venv node redis chromium mariadb
	DATABASE_URL=$${DATABASE_URL:-mysql://root@127.0.0.1:3306/cinegraph} \
	CHROMIUM_PATH=$(CHROMIUM_PATH) \
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .

venv: $(STAMP)

$(PY):
	@command -v $(PYTHON) >/dev/null && $(PYTHON) -c "import ensurepip, venv" 2>/dev/null || $(SYSTEM_PACKAGES)
	$(PYTHON) -m venv $(VENV)

# mysqlclient builds from source: it needs pkg-config and the MariaDB client headers.
$(STAMP): requirements.txt | $(PY)
	@$(PY) -c "import MySQLdb" 2>/dev/null || pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || $(SYSTEM_PACKAGES)
	$(PY) -m pip install -r requirements.txt
	touch $@

node: $(NODE_STAMP)

$(NODE_STAMP): package-lock.json
	@command -v npm >/dev/null || $(SYSTEM_PACKAGES)
	npm ci --no-audit --no-fund
	touch $@

# The browser test drives Chromium from apt (tests/conftest.py); `make demo` does not need it.
chromium:
	@test -x "$(CHROMIUM_PATH)" || $(SYSTEM_PACKAGES)

# Debian's Redis server, built on jemalloc (devstack/services.py, redis_server_binary).
redis:
	@test -x /usr/bin/redis-check-rdb || $(SYSTEM_PACKAGES)

# The tests start their own MariaDB where none answers at DATABASE_URL (a bare machine).
mariadb:
	@test -x /usr/sbin/mariadbd -a -x /usr/bin/mariadb-install-db -a -x /usr/bin/my_print_defaults || $(SYSTEM_PACKAGES)
