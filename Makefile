# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
STREAMLIT_SERVER_PORT ?= 8501
# Loopback by default: without login (local single-user mode) nobody else on the network should reach it.
# A clinic server with login sets STREAMLIT_SERVER_ADDRESS=0.0.0.0 (see README, Access control).
STREAMLIT_SERVER_ADDRESS ?= 127.0.0.1
export STREAMLIT_SERVER_PORT STREAMLIT_SERVER_ADDRESS

.PHONY: run test venv chromium lint bench sample-data clean

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m streamlit run dashboard.py --server.port $(STREAMLIT_SERVER_PORT) --server.address $(STREAMLIT_SERVER_ADDRESS)

# Debian's chromium for the real-browser tests; skipped quietly where apt is not available.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed; browser tests will be skipped"; \
	fi

test: $(STAMP) chromium
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/bench_export.py --keep bench/out/cohort10k
	$(PY) bench/bench_outcomes.py --data bench/out/cohort10k/data
	$(PY) bench/bench_pages.py

sample-data: $(STAMP)
	$(PY) -m analytics.synth --patients 360 --seed 20261124 --out sample_data

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
