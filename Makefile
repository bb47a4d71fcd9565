# Thin wrappers around the `doe` CLI. Every target depends on `install`, so any of them works first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
DOE := $(VENV)/bin/doe
INSTALLED := $(VENV)/.installed

suite ?=
id ?= last
cloud ?= local
expfilter ?=
config ?=
out ?=
pipelines ?=
from_design ?=

opt = $(if $(2),$(1) "$(2)")
SUITE_OPTS = --suite "$(suite)" --id "$(id)"
# plan and clean are about clouds that create hosts: aws unless cloud= is given on the command line.
CLOUD_OR_AWS = $(if $(filter command line environment,$(origin cloud)),$(cloud),aws)

.PHONY: install run run-keep status design design-validate info schema etl etl-all etl-super etl-clean \
        clean plan test test-unit lint bench

# A doe-suite project's own packages (its config dir's pyproject.toml), for its custom ETL steps.
PROJECT_CONFIG_DIR := $(or $(DOE_CONFIG_DIR),$(if $(DOES_PROJECT_DIR),$(DOES_PROJECT_DIR)/doe-suite-config))

install: $(INSTALLED)
	@$(if $(PROJECT_CONFIG_DIR),$(VENV)/bin/python scripts/install_project_packages.py "$(PROJECT_CONFIG_DIR)")

$(INSTALLED): pyproject.toml scripts/install_collections.py scripts/install_system_packages.sh
	@./scripts/install_system_packages.sh
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --upgrade pip
	@$(VENV)/bin/pip install --quiet -e '.[test]'
	@$(VENV)/bin/python scripts/install_collections.py .collections
	@# Byte code for the editable install: where PYTHONDONTWRITEBYTECODE is set (CI images often do),
	@# every doe command would otherwise compile its modules again (about 0.1 s).
	@PYTHONDONTWRITEBYTECODE= $(VENV)/bin/python -m compileall -q doe_cli etl doespy >/dev/null
	@touch $@

run: install
	$(DOE) run $(SUITE_OPTS) --cloud "$(cloud)" $(call opt,--expfilter,$(expfilter))

run-keep: install
	$(DOE) run $(SUITE_OPTS) --cloud "$(cloud)" --keep $(call opt,--expfilter,$(expfilter))

status: install
	$(DOE) status $(call opt,--suite,$(suite)) --id "$(id)"

design: install
	$(DOE) design --suite "$(suite)"

design-validate: install
	$(DOE) design-validate --suite "$(suite)"

info: install
	$(DOE) info

schema: install
	$(DOE) schema

plan: install
	$(DOE) plan --suite "$(suite)" --cloud "$(CLOUD_OR_AWS)"

etl: install
	$(DOE) etl $(SUITE_OPTS) $(call opt,--pipelines,$(pipelines)) $(if $(from_design),--from-design)

etl-all: install
	$(DOE) etl-all

etl-super: install
	$(DOE) etl-super --config "$(config)" $(call opt,--out,$(out)) $(call opt,--pipelines,$(pipelines))

etl-clean: install
	$(DOE) etl-clean $(SUITE_OPTS)

clean: install
	$(DOE) clean --cloud "$(CLOUD_OR_AWS)" $(if $(suite),--suite "$(suite)" --id "$(id)")

# Two workers, whole test files each (a module's fixtures, e.g. one provisioned suite, are built once):
# most tests wait on processes (ansible-playbook, sshd hosts, moto), so two cores run two files at once.
test_workers ?= 2
test: install
	$(VENV)/bin/pytest -q -n $(test_workers) --dist loadfile

test-unit: install
	$(VENV)/bin/pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check doe_cli etl doespy tests bench
	$(VENV)/bin/yamllint -s playbooks roles group_vars
	$(VENV)/bin/ansible-lint playbooks roles

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done
