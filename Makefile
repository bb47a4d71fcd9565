# Thin wrappers around the `doe` CLI, with doe-suite's target names. Every target depends on `install`, so
# any of them works first; `make` alone lists them (`make help`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
DOE := $(VENV)/bin/doe
INSTALLED := $(VENV)/.installed
.DEFAULT_GOAL := help

suite ?=
id ?=
cloud ?=
expfilter ?=
config ?=
out ?=
pipelines ?=
from_design ?=
yes ?=
dry_run ?=

opt = $(if $(2),$(1) "$(2)")
# As in doe-suite: a run starts a new suite id unless id= names one; the other targets read the last.
# Without cloud=, doe run picks the cloud itself (a resume's own, else $DOES_CLOUD, else local).
RUN_OPTS = --suite "$(suite)" --id "$(or $(id),new)" $(call opt,--cloud,$(cloud)) $(call opt,--expfilter,$(expfilter))
SUITE_OPTS = --suite "$(suite)" --id "$(or $(id),last)"
# Cleaning names its cloud: make clean takes $DOES_CLOUD, else aws (the cloud that leaves resources behind).
CLEAN_OPTS = $(if $(suite),--suite "$(suite)" $(call opt,--id,$(id))) $(if $(yes),--yes)

# A target missing its argument is one line and exit 2, before anything is installed.
require = $(if $(filter $(1),$(MAKECMDGOALS)),$(if $($(2)),,$(error make $(firstword $(filter $(1),$(MAKECMDGOALS))) needs $(2)=$(3))))
$(call require,run run-keep design design-validate etl etl-clean plan,suite,<SUITE> (a design in designs/))
$(call require,etl-super,config,<CONFIG> (a file in super_etl/))
$(call require,clean-cloud,cloud,<CLOUD> (aws, local or an inventory name))

.PHONY: help install run run-keep status design design-validate info schema etl etl-all etl-super etl-clean \
        etl-clean-all clean clean-cloud clean-aws clean-result plan test test-unit lint bench

help: ## list the targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / { printf "  make %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# A doe-suite project's own packages (its config dir's pyproject.toml), for its custom ETL steps.
PROJECT_CONFIG_DIR := $(or $(DOE_CONFIG_DIR),$(if $(DOES_PROJECT_DIR),$(DOES_PROJECT_DIR)/doe-suite-config))

install: $(INSTALLED) ## create .venv with doe, its test tools and Ansible collections
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

run: install ## run a suite: suite=S [id=new|last|ID] [cloud=C] [expfilter=REGEX]
	$(DOE) run $(RUN_OPTS)

run-keep: install ## as run, but keep the hosts (queues, folders) until make clean
	$(DOE) run $(RUN_OPTS) --keep

status: install ## jobs per experiment: suite=S [id=last|ID]; without suite= the recent runs
	$(DOE) status $(if $(suite),$(SUITE_OPTS))

design: install ## every run's command per host: suite=S
	$(DOE) design --suite "$(suite)"

design-validate: install ## the resolved design with defaults: suite=S
	$(DOE) design-validate --suite "$(suite)"

info: install ## the suites of the config dir, their experiments and run counts
	$(DOE) info

schema: install ## JSON Schema of designs, for editors
	$(DOE) schema

plan: install ## AWS preflight, hosts and cost: suite=S
	$(DOE) plan --suite "$(suite)" --cloud "$(or $(cloud),aws)"

etl: install ## the ETL pipelines of a result: suite=S [id=last|ID] [pipelines="P1 P2"] [from_design=1]
	$(DOE) etl $(SUITE_OPTS) $(call opt,--pipelines,$(pipelines)) $(if $(from_design),--from-design)

etl-all: install ## the ETL pipelines of every result folder
	$(DOE) etl-all

etl-super: install ## combine suites: config=C [out=DIR, default $DOES_SUPERETL_OUT] [pipelines="P1 P2"]
	$(DOE) etl-super --config "$(config)" $(call opt,--out,$(out)) $(call opt,--pipelines,$(pipelines))

etl-clean: install ## delete a result's ETL outputs: suite=S [id=last|ID]
	$(DOE) etl-clean $(SUITE_OPTS)

etl-clean-all: install ## delete the ETL outputs of every result folder
	$(DOE) etl-clean --all

clean: install ## list, ask, then delete the default cloud's leftovers ($DOES_CLOUD, else aws) [yes=1]
	$(DOE) clean --cloud "$(or $(DOES_CLOUD),aws)" $(CLEAN_OPTS)

clean-cloud: install ## as clean, for cloud=C [suite=S [id=ID|last]] [yes=1]
	$(DOE) clean --cloud "$(cloud)" $(CLEAN_OPTS)

clean-aws: install ## as clean, for the AWS resources of the project [yes=1]
	$(DOE) clean --cloud aws $(CLEAN_OPTS)

clean-result: install ## list, ask, then delete incomplete result folders [suite=S] [yes=1] [dry_run=1]
	$(DOE) clean-result $(call opt,--suite,$(suite)) $(if $(yes),--yes) $(if $(dry_run),--dry-run)

# Two workers, whole test files each (a module's fixtures, e.g. one provisioned suite, are built once):
# most tests wait on processes (ansible-playbook, sshd hosts, moto), so two cores run two files at once.
test_workers ?= 2
test: install ## the whole test suite (test_workers=1: one file after another)
	$(VENV)/bin/pytest -q -n $(test_workers) --dist loadfile

test-unit: install ## the unit tests only
	$(VENV)/bin/pytest -q tests/unit

lint: install ## ruff, mypy, yamllint and ansible-lint
	$(VENV)/bin/ruff check doe_cli etl doespy tests bench plugins roles playbooks
	$(VENV)/bin/mypy doe_cli
	$(VENV)/bin/mypy etl
	$(VENV)/bin/yamllint -s playbooks roles group_vars
	$(VENV)/bin/ansible-lint playbooks roles

bench: install ## the speed measurements of bench/
	@for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done
