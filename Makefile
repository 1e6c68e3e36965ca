# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# requirements.txt is the hashed lock of the runtime dependencies in pyproject.toml (make run installs it);
# requirements-test.txt locks runtime + test + dev tools (make test installs it). `make lock` regenerates both.
RUNTIME := $(VENV)/.runtime-installed
TESTENV := $(VENV)/.test-installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes
STREAMLIT_SERVER_PORT ?= 8501
# Loopback by default: without login (local single-user mode) nobody else on the network should reach it.
# A clinic server with login sets STREAMLIT_SERVER_ADDRESS=0.0.0.0 (see README, Access control).
STREAMLIT_SERVER_ADDRESS ?= 127.0.0.1
export STREAMLIT_SERVER_PORT STREAMLIT_SERVER_ADDRESS

.PHONY: run test venv chromium lint bench bench-scale sample-data lock clean screenshots

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	@touch $(RUNTIME)

$(TESTENV): requirements-test.txt requirements.txt | $(PY)
	$(PIP) -r requirements-test.txt
	@touch $(RUNTIME) $(TESTENV)

venv: $(RUNTIME)

run: $(RUNTIME)
	$(PY) -m ui.serve --server.port $(STREAMLIT_SERVER_PORT) --server.address $(STREAMLIT_SERVER_ADDRESS)

# Debian's chromium for the real-browser tests; skipped quietly where apt is not available.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed; browser tests will be skipped"; \
	fi

test: $(TESTENV) chromium lint
	$(PY) -m pytest -q -n 2 --dist loadfile

# mypy reads its settings from pyproject.toml ([tool.mypy]; pandas-stubs comes with the test lock).
lint: $(TESTENV)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy analytics

# Regenerate both locks from pyproject.toml, keeping today's pins where pyproject still allows them
# (uv reads the existing lock as its preferences; add --upgrade to move to newer releases).
UV := $(VENV)/bin/uv
lock: $(TESTENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip compile pyproject.toml --quiet --python-version 3.11 --generate-hashes --no-header -o requirements.txt
	$(UV) pip compile pyproject.toml --quiet --python-version 3.11 --generate-hashes --no-header --group test --group dev \
		-o requirements-test.txt

# The benchmarks use the test lock (Playwright for bench_sessions, DuckDB for bench_scale) and chromium.
bench: $(TESTENV) chromium
	$(PY) bench/bench_export.py --keep bench/out/cohort10k
	$(PY) bench/bench_outcomes.py --data bench/out/cohort10k/data
	$(PY) bench/bench_pages.py
	$(PY) bench/bench_dashboard.py
	$(PY) bench/bench_sessions.py --browser
	$(PY) bench/bench_scale.py --patients 10000 --single

# Registry scale (issue #13): the 100,000-patient export against a DuckDB query of the core table, and the
# single-process export, in one run (generates the cohort into bench/out/ first; about 10 minutes).
bench-scale: $(TESTENV)
	$(PY) bench/bench_scale.py --patients 100000 --single --dask

# The README's screenshots (docs/screenshots/) from the sample data: the dashboard in Debian's chromium, and page 1
# of a clinic-visit PDF rendered by pdftoppm (Debian's poppler-utils, installed here as root when missing).
screenshots: $(TESTENV) chromium
	@command -v pdftoppm >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
	$(PY) scripts/screenshots.py

sample-data: $(RUNTIME)
	$(PY) -m analytics.synth --patients 360 --seed 20261124 --out sample_data

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
