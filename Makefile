# Two commands for a fresh machine with only python3 and pip: `make demo` and `make test`.
# Each creates the virtual environments it needs (once) and reuses them afterwards.
PYTHON ?= python3
AIRFLOW3 ?= 3.3.2
AIRFLOW2 ?= 2.11.2
SDK ?= 0.162.0
VENV3 := .venv
VENV2 := .venv-af2
VENV_BENCH := .venv-bench
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo demo-events test lint test-af3 test-af2 venvs clean release-check bench bench-budget \
	demo-ui test-ui test-ui-browser ui-bundle ui-bundle-check

$(VENV3)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV3)/bin/pip install $(PIP_FLAGS) -e ".[dev,openlineage]" "apache-airflow==$(AIRFLOW3)" "databricks-sdk==$(SDK)"
	touch $@

# Airflow 2.11 needs SQLAlchemy < 2, so it lives in its own environment.
$(VENV2)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV2)/bin/pip install $(PIP_FLAGS) -e ".[testing,openlineage]" "apache-airflow==$(AIRFLOW2)" "sqlalchemy<2" "databricks-sdk==$(SDK)"
	touch $@

venvs: $(VENV3)/.installed $(VENV2)/.installed

demo: $(VENV3)/.installed
	$(VENV3)/bin/python -m airflow_provider_lakeflow.testing.demo

# Event-driven scheduling (Airflow 3): a real scheduler and triggerer run DAGs as tables land; about two minutes.
demo-events: $(VENV3)/.installed
	$(VENV3)/bin/python -m airflow_provider_lakeflow.testing.event_demo

lint: $(VENV3)/.installed
	$(VENV3)/bin/ruff check .
	$(VENV3)/bin/ruff format --check .
	$(VENV3)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV3)/bin/mkdocs build --strict --site-dir site

test-af3: $(VENV3)/.installed
	$(VENV3)/bin/python -m pytest -q

test-af2: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest -q

test: lint test-af3 test-af2 release-check

# Release readiness: an sdist and a wheel that twine accepts, and a wheel that installs into a clean virtual
# environment where Airflow lists the provider.
release-check: $(VENV3)/.installed
	rm -rf dist .venv-release
	$(VENV3)/bin/python -m build --outdir dist . > /dev/null
	$(VENV3)/bin/twine check --strict dist/*
	$(PYTHON) -m venv .venv-release
	.venv-release/bin/pip install $(PIP_FLAGS) dist/*.whl "apache-airflow==$(AIRFLOW3)" "databricks-sdk==$(SDK)"
	home=$$(mktemp -d) && AIRFLOW_HOME=$$home .venv-release/bin/airflow providers list -o json \
		| .venv-release/bin/python -c "import json,sys; ps={p['package_name'] for p in json.load(sys.stdin)}; \
		assert 'airflow-provider-lakeflow' in ps, ps; print('airflow providers list shows airflow-provider-lakeflow')"
	rm -rf .venv-release

# Benchmarks compare with the official provider, which must not be installed in the test environment: own venv.
$(VENV_BENCH)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_BENCH)/bin/pip install $(PIP_FLAGS) -e . "apache-airflow==$(AIRFLOW3)" "databricks-sdk==$(SDK)" \
		apache-airflow-providers-databricks==7.23.0
	touch $@

# Bounded runs (a few minutes in all on 2 cores); N=500 matches the issue's target numbers (default 1000).
BENCH_N ?= 1000
bench: $(VENV_BENCH)/.installed $(VENV3)/.installed
	$(VENV_BENCH)/bin/python benchmarks/parse_cost.py
	$(VENV_BENCH)/bin/python benchmarks/api_economy.py
	$(VENV_BENCH)/bin/python benchmarks/triggerer_scale.py --triggers $(BENCH_N)
	# The latency part starts Airflow through the tests' harness (tests/test_real_triggerer.py), which needs pytest.
	$(VENV3)/bin/python benchmarks/event_watchers.py

# Issue 10's scale numbers (a few minutes each on 2 cores): 10,000 waits, a rate-limited workspace, a restart storm.
bench-budget: $(VENV_BENCH)/.installed
	$(VENV_BENCH)/bin/python benchmarks/triggerer_scale.py --triggers 10000 --poll 10 --update-seconds 60 \
		--budget 2000 --variants ours,floor
	$(VENV_BENCH)/bin/python benchmarks/workspace_budget.py

# --- The Lakeflow views in Airflow's UI (issue 21) ---------------------------------------------------------------------
UI_WWW := airflow_provider_lakeflow/ui/www
UI_BUNDLE := $(UI_WWW)/dist/main.umd.cjs

# Local Airflow 3 (api-server, scheduler, dag-processor, triggerer) against the emulator, with the example DAGs running.
demo-ui: $(VENV3)/.installed
	$(VENV3)/bin/python -m airflow_provider_lakeflow.ui.demo

# The plugin's registration on both Airflow lines, and the views' API through the real api-server app.
test-ui: $(VENV3)/.installed $(VENV2)/.installed
	$(VENV3)/bin/python -m pytest -q tests_ui --ignore=tests_ui/test_browser.py
	$(VENV2)/bin/python -m pytest -q tests_ui/test_plugin_registration.py

# Headless Chromium (Debian's package) through Playwright against a real Airflow and the emulator; saves screenshots.
test-ui-browser: $(VENV3)/.installed
	command -v chromium > /dev/null || (apt-get update -qq && apt-get install -y -qq chromium > /dev/null)
	$(VENV3)/bin/python -c "import playwright" 2> /dev/null || $(VENV3)/bin/pip install $(PIP_FLAGS) "playwright==1.65.3"
	$(VENV3)/bin/python -m pytest -q -s tests_ui/test_browser.py

# Rebuild the committed bundle from its sources (npm packages pinned by the lockfile).
ui-bundle:
	cd $(UI_WWW) && npm ci --no-audit --no-fund && npm run build

# CI: the committed bundle is exactly what the sources build.
ui-bundle-check: ui-bundle
	git diff --exit-code -- $(UI_BUNDLE)

clean:
	rm -rf $(VENV3) $(VENV2) .pytest_cache .mypy_cache .ruff_cache
