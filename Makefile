# Two commands for a fresh machine with only python3 and pip: `make demo` and `make test`.
# Each creates the virtual environments it needs (once) and reuses them afterwards.
PYTHON ?= python3
AIRFLOW3 ?= 3.3.2
AIRFLOW2 ?= 2.11.2
SDK ?= 0.162.0
VENV3 := .venv
VENV2 := .venv-af2
# The older Airflow 3 minors the package supports, each the last release of its minor, with the pins that Airflow
# itself needs today (a plain install resolves newer releases that break it; see docs/airflow-versions.md).
AIRFLOW31 ?= 3.1.8
AIRFLOW32 ?= 3.2.2
PINS31 := "cryptography<51"
PINS32 := "fastapi==0.136.3" "cadwyn==7.0.0" "svcs==25.1.0"
VENV31 := .venv-af31
VENV32 := .venv-af32
VENV_BENCH := .venv-bench
VENV_SDK_LATEST := .venv-sdk-latest
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo demo-events test lint test-af3 test-af2 test-af3-parallel test-af3-serial test-af2-parallel test-af2-serial \
	test-af31 test-af32 test-sdk-latest venvs clean release-check bench bench-budget bench-soak demo-ui test-ui \
	test-ui-browser ui-bundle ui-bundle-check

$(VENV3)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV3)/bin/pip install $(PIP_FLAGS) -e ".[dev,openlineage]" "apache-airflow==$(AIRFLOW3)" "databricks-sdk==$(SDK)"
	touch $@

# Airflow 2.11 needs SQLAlchemy < 2, so it lives in its own environment; and cryptography < 51, whose MultiFernet
# Airflow 2.11 cannot mark (every connection with a password fails once airflow.cfg has a fernet_key).
PINS2 := "sqlalchemy<2" "cryptography<51"
$(VENV2)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV2)/bin/pip install $(PIP_FLAGS) -e ".[testing,openlineage]" "apache-airflow==$(AIRFLOW2)" $(PINS2) "databricks-sdk==$(SDK)"
	touch $@

$(VENV31)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV31)
	$(VENV31)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV31)/bin/pip install $(PIP_FLAGS) -e ".[testing,openlineage]" "apache-airflow==$(AIRFLOW31)" $(PINS31) \
		"databricks-sdk==$(SDK)"
	touch $@

$(VENV32)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV32)
	$(VENV32)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV32)/bin/pip install $(PIP_FLAGS) -e ".[testing,openlineage]" "apache-airflow==$(AIRFLOW32)" $(PINS32) \
		"databricks-sdk==$(SDK)"
	touch $@

venvs: $(VENV3)/.installed $(VENV2)/.installed $(VENV31)/.installed $(VENV32)/.installed $(VENV_SDK_LATEST)/.installed

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

# Most tests wait on remote timelines rather than compute, so they run in parallel (pytest-xdist, whole files per
# worker); tests marked `serial` (timing measurements, whole Airflow stacks; see tests/conftest.py) run alone after.
# Exit code 5 (nothing selected) is not a failure: a phase may select nothing on one Airflow version.
PYTEST_WORKERS ?= 3
PYTEST_PARALLEL = -q -p no:cacheprovider -m "not serial" -n $(PYTEST_WORKERS) --dist loadfile
PYTEST_SERIAL = -q -p no:cacheprovider -m serial -p no:xdist --durations=15

test-af3: test-af3-parallel test-af3-serial
test-af2: test-af2-parallel test-af2-serial

test-af3-parallel: $(VENV3)/.installed
	$(VENV3)/bin/python -m pytest $(PYTEST_PARALLEL) || [ $$? -eq 5 ]
test-af3-serial: $(VENV3)/.installed
	$(VENV3)/bin/python -m pytest $(PYTEST_SERIAL) || [ $$? -eq 5 ]
test-af2-parallel: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest $(PYTEST_PARALLEL) || [ $$? -eq 5 ]
test-af2-serial: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest $(PYTEST_SERIAL) || [ $$? -eq 5 ]

# What CI runs (.ci/run). The environments are built side by side (mostly downloads). Then what measures nothing
# runs side by side: lint, the parallel phases of 3.3 and 2.11. Then each phase that measures time runs alone: 3.3's
# and 2.11's serial tests. Last, side by side, 3.1, 3.2 and the UI in a browser, which wait on Airflow's and the
# emulator's timelines more than they compute and measure no time; the newest SDK, the release check, the UI bundle
# and the UI's API take the first free slot (the browser test ends first).
test:
	@date +"%T environments"
	$(MAKE) -j5 venvs
	@date +"%T lint, parallel phases"
	$(MAKE) -j3 -O lint test-af3-parallel test-af2-parallel
	@date +"%T serial phases"
	$(MAKE) test-af3-serial
	$(MAKE) test-af2-serial
	@date +"%T Airflow 3.1, 3.2, the UI in a browser; then the newest SDK, release check, UI bundle and API"
	$(MAKE) -j3 -O test-af31 test-af32 test-ui-browser test-sdk-latest release-check ui-bundle-check test-ui
	@date +"%T done"

# The spec and emulator tests with the newest databricks-sdk (the field table is generated from the minimum, $(SDK),
# and is only a floor): newer fields pass, typos fail naming the installed release, the emulator's answers parse
# through the newer dataclasses. The SDK is upgraded on every run; the rest of the environment is built once.
SDK_LATEST_TESTS := tests/test_spec_fields.py tests/test_spec_fields_newer_sdk.py tests/test_spec_fields_track_sdk.py \
	tests/test_spec_rules.py tests/test_enums_track_sdk.py tests/test_emulator_sdk.py tests/test_emulator_validation.py
$(VENV_SDK_LATEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_SDK_LATEST)
	$(VENV_SDK_LATEST)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_SDK_LATEST)/bin/pip install $(PIP_FLAGS) -e ".[dev,openlineage]" "apache-airflow==$(AIRFLOW3)" databricks-sdk
	touch $@

test-sdk-latest: $(VENV_SDK_LATEST)/.installed
	$(VENV_SDK_LATEST)/bin/pip install $(PIP_FLAGS) --upgrade databricks-sdk
	$(VENV_SDK_LATEST)/bin/python -c "import databricks.sdk.version as v; print('databricks-sdk', v.__version__)"
	$(VENV_SDK_LATEST)/bin/python -m pytest -q -p no:cacheprovider -n 2 $(SDK_LATEST_TESTS)

# Airflow 3.1 and 3.2: what differs between minors, not the whole suite. The task lifecycle through dag.test() (run
# operator in the worker and deferred, a retry that reconnects, a deferred timeout, a deferrable sensor), deferred
# waits through a real scheduler and triggerer that is restarted and a user's kill (test_kill_by_cancellation), a
# watcher firing DAG runs, and the version notes in the logs. Each target has its own environment and pytest run, so
# the two can run side by side (make -j).
MATRIX_TESTS := \
	"tests/test_run_operator.py::test_run_succeeds_and_pushes_xcoms" \
	"tests/test_run_operator.py::test_retry_reconnects_to_the_update_it_started[deferred]" \
	"tests/test_run_operator.py::test_timeout_stops_the_update_and_fails[deferred]" \
	"tests/test_sensor_and_trigger.py::test_sensor_waits_for_latest_update[lf_sensor_deferred]" \
	tests/test_version_notes.py \
	tests/test_kill_by_cancellation.py \
	"tests/test_event_driven.py::test_three_updates_from_outside_airflow_run_the_dag_three_times"

test-af31: $(VENV31)/.installed
	$(VENV31)/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_TESTS)

test-af32: $(VENV32)/.installed
	$(VENV32)/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_TESTS)

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

# Issue 18's soak (a few minutes on 2 cores): our waits beside the official trigger and cycle-holding triggers, round
# after round in one event loop; RSS slope with the defaults vs a control that freezes the heap as 0.2 did.
bench-soak: $(VENV_BENCH)/.installed
	$(VENV_BENCH)/bin/python benchmarks/triggerer_soak.py

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
	rm -rf $(VENV3) $(VENV2) $(VENV31) $(VENV32) $(VENV_SDK_LATEST) .pytest_cache .mypy_cache .ruff_cache
