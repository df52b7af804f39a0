# The two commands of the README, and the pieces they are made of.
#   make up     run the platform on an embedded default (no cluster, no root)
#   make test   install everything, start the local stack, run every check and test
.PHONY: up test bootstrap stack check lint typecheck imports pytest unit integration controlplane down

VENV := .venv/bin
PYTEST_ARGS ?=

up: bootstrap
	$(VENV)/mobileplane up

test: bootstrap stack check pytest

bootstrap:
	@scripts/bootstrap

stack: bootstrap
	$(VENV)/mobileplane stack up

down:
	$(VENV)/mobileplane stack down

check: lint typecheck imports

lint: bootstrap
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck: bootstrap
	$(VENV)/mypy

imports: bootstrap
	$(VENV)/lint-imports

pytest: bootstrap
	$(VENV)/pytest $(PYTEST_ARGS)

unit: bootstrap
	$(VENV)/pytest tests/unit $(PYTEST_ARGS)

integration: stack
	$(VENV)/pytest -m integration $(PYTEST_ARGS)

controlplane: stack
	$(VENV)/pytest -m controlplane $(PYTEST_ARGS)
