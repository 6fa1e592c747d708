# Two commands for a fresh machine with only python3 and pip: `make demo` and `make test`.
# Each creates the virtual environments it needs (once) and reuses them afterwards.
PYTHON ?= python3
AIRFLOW3 ?= 3.3.2
AIRFLOW2 ?= 2.11.2
SDK ?= 0.162.0
VENV3 := .venv
VENV2 := .venv-af2
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test lint test-af3 test-af2 venvs clean

$(VENV3)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV3)/bin/pip install $(PIP_FLAGS) -e ".[dev]" "apache-airflow==$(AIRFLOW3)" "databricks-sdk==$(SDK)"
	touch $@

# Airflow 2.11 needs SQLAlchemy < 2, so it lives in its own environment.
$(VENV2)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV2)/bin/pip install $(PIP_FLAGS) -e ".[testing]" "apache-airflow==$(AIRFLOW2)" "sqlalchemy<2" "databricks-sdk==$(SDK)"
	touch $@

venvs: $(VENV3)/.installed $(VENV2)/.installed

demo: $(VENV3)/.installed
	$(VENV3)/bin/python -m airflow_provider_lakeflow.testing.demo

lint: $(VENV3)/.installed
	$(VENV3)/bin/ruff check .
	$(VENV3)/bin/ruff format --check .
	$(VENV3)/bin/mypy

test-af3: $(VENV3)/.installed
	$(VENV3)/bin/python -m pytest -q

test-af2: $(VENV2)/.installed
	$(VENV2)/bin/python -m pytest -q

test: lint test-af3 test-af2

clean:
	rm -rf $(VENV3) $(VENV2) .pytest_cache .mypy_cache .ruff_cache
