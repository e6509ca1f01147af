# make demo: set up, load the real units and demo users, serve the command room on 127.0.0.1:8000
# make test: set up, then lint, type-check, check migrations and the API contract, and run every test
# on SQLite and on PostgreSQL side by side (PostgreSQL required when DIEUHANH_REQUIRE_PG=1).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= $(or $(DIEUHANH_TEST_PG_URL),postgresql://postgres@127.0.0.1:5432/test)
LOCALE := src/dieuhanh/locale
export DIEUHANH_HOME ?= $(CURDIR)/var

.PHONY: setup assets fonts demo serve test lint check test-sqlite test-pg openapi messages clean bench-deps

setup: $(VENV)/.installed messages assets browser fonts

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -r requirements.lock
	$(PY) -m pip install -qq --no-deps -e .
	touch $@

# Compiled translations are build output (not committed).
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d $(LOCALE) -D django

# Third-party front-end files from the npm registry (package.json + its lockfile), copied into the
# static files; build output, never committed. node_modules/.package-lock.json is npm ci's stamp.
VENDOR := src/dieuhanh/commandroom/static/vendor
assets: $(VENDOR)/leaflet/leaflet.js $(VENDOR)/echarts/echarts.common.min.js $(VENDOR)/vnmap/VN-2025.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(VENDOR)/leaflet/leaflet.js: node_modules/.package-lock.json
	rm -rf $(VENDOR)/leaflet && mkdir -p $(VENDOR)/leaflet
	cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/dist/images $(VENDOR)/leaflet/

# ECharts' common build (line, bar, scatter, markers: the room's charts) and its Vietnamese locale.
$(VENDOR)/echarts/echarts.common.min.js: node_modules/.package-lock.json
	rm -rf $(VENDOR)/echarts && mkdir -p $(VENDOR)/echarts
	cp node_modules/echarts/dist/echarts.common.min.js $(VENDOR)/echarts/
	cp node_modules/echarts/i18n/langVI.js node_modules/echarts/LICENSE node_modules/echarts/NOTICE $(VENDOR)/echarts/

# Province boundaries of both maps (issue 17): built from the npm package @svg-maps/vietnam (CC BY 4.0)
# and the units' succession by dieuhanh.units.shapes, simplified; the room serves them (room/shapes/).
$(VENDOR)/vnmap/VN-2025.json: node_modules/.package-lock.json $(VENV)/.installed src/dieuhanh/units/shapes.py
	$(PY) -m dieuhanh.units.shapes node_modules $(VENDOR)/vnmap

# Debian's Chromium for the browser tests; installed when missing and we are root (CI, a fresh machine).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation2; \
	  else echo "chromium is missing and we are not root: the browser tests will fail"; fi; \
	fi

# Reports are set in Times New Roman (Decree 30/2020/NĐ-CP); Debian's metric-compatible Liberation Serif
# stands in for it in PDFs, and WeasyPrint needs Pango.
fonts:
	@if ! fc-list 2>/dev/null | grep -q "Liberation Serif" || ! ldconfig -p | grep -q libpangoft2; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-liberation2 libpango-1.0-0 libpangoft2-1.0-0; \
	  else echo "Liberation fonts or Pango are missing and we are not root: PDF reports will fail"; fi; \
	fi

# Packages only the benchmarks use (DuckDB, the baseline of bench/analytics.py): `make bench-deps`, by hand.
bench-deps: $(VENV)/.installed
	$(PY) -m pip install -qq -r bench/requirements.txt

demo: setup
	$(VENV)/bin/dieuhanh init --demo
	$(VENV)/bin/dieuhanh serve --host 127.0.0.1 --port 8000

serve: setup
	$(VENV)/bin/dieuhanh serve

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m django makemigrations --check --dry-run --settings=dieuhanh.settings
	$(PY) -m dieuhanh.openapi --check docs/openapi.json

openapi: $(VENV)/.installed
	$(PY) -m dieuhanh.openapi docs/openapi.json

# The two passes run side by side (a core each: most of a pass waits on its database, browser or
# subprocesses), each printing when it ends. Each pass has its own live-event subject, so one pass's
# screens never hear the other's events on the shared NATS (nor a demo's on the same machine).
test: setup lint
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-pg

test-sqlite:
	DIEUHANH_LIVE_SUBJECT=test-sqlite.live $(PY) -m pytest -q -p no:cacheprovider

test-pg:
	@if $(PY) -m dieuhanh.pgprobe "$(PG_URL)"; then \
	  DIEUHANH_LIVE_SUBJECT=test-pg.live DIEUHANH_DATABASE_URL="$(PG_URL)" $(PY) -m pytest -q -p no:cacheprovider -m "not browser"; \
	elif [ "$$DIEUHANH_REQUIRE_PG" = 1 ]; then \
	  echo "PostgreSQL is required (DIEUHANH_REQUIRE_PG=1) but does not answer at $(PG_URL)"; exit 1; \
	else echo "PostgreSQL does not answer at $(PG_URL): the PostgreSQL run was NOT done."; fi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
