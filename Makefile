# The project's commands. A fresh machine needs only Python 3.11 (3.13 too for the
# local AWS stack), Node and the package registries: every target installs what it uses.
#
#   make demo   set up, then run the local end-to-end demo
#   make test   set up, then run every check CI runs

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_YES := 1
export PIPENV_NOSPIN := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
export PIPENV_VERBOSITY := -1

VENV_BIN := .venv/bin
TOOLS_STAMP := .tools/.installed
VENV_STAMP := .venv/.installed

.PHONY: help setup localstack-setup lint infra-lint unit integration test train demo demo-cycle demo-offline bench bench-deps bench-lambda bench-web bench-batch bench-scoring bench-e2e deploy-aws clean

help:
	@echo "make demo    - set up and run the local end-to-end demo"
	@echo "make test    - set up and run lint, infra lint and every test"
	@echo "make train   - train the model on TLC data into the local MLflow store"
	@echo "make demo-cycle - a model change on the local stack: shadow, compare, promote, roll back"
	@echo "make bench   - print the benchmarks"
	@echo "make deploy-aws ARGS=\"--region R --alarm-email E --model-writer-arn ROLE_ARN [--dry-run]\" - deploy to AWS (scripts/deploy_aws.py)"

$(TOOLS_STAMP): tools/requirements.txt tools/constraints.txt
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt -c tools/constraints.txt
	touch $@

$(VENV_STAMP): Pipfile.lock $(TOOLS_STAMP)
	.tools/bin/pipenv sync --dev --python $(PYTHON)
	touch $@

setup: $(VENV_STAMP)

# LocalStack in its own Python 3.13 virtualenv, with the Docker-free Lambda executor.
localstack-setup:
	bash local_stack/install.sh

lint: setup
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/mypy

infra-lint: $(TOOLS_STAMP)
	bash tools/lint-infra.sh

unit: setup
	$(VENV_BIN)/python -m pytest tests

integration: setup localstack-setup
	$(VENV_BIN)/python -m pytest local_stack/tests integration-test

# One pytest run for unit and integration tests, so CI reads one closing summary.
test: lint infra-lint localstack-setup
	$(VENV_BIN)/python -m pytest tests local_stack/tests integration-test

train: setup
	$(VENV_BIN)/python -m scripts.demo train

# LocalStack started, the model trained if there is none, template.yaml deployed, rides streamed, LocalStack stopped.
demo: setup localstack-setup
	$(VENV_BIN)/python -m scripts.demo local

demo-offline: setup
	$(VENV_BIN)/python -m scripts.demo offline

# A model change on the local stack: challenger in shadow, compare, promote, roll back.
demo-cycle: setup localstack-setup
	$(VENV_BIN)/python -m scripts.demo cycle --rides 100

bench-deps: setup
	$(VENV_BIN)/python -m bench.dependency_sizes

bench-lambda: setup
	$(VENV_BIN)/python -m bench.lambda_bench

bench-web: setup
	$(VENV_BIN)/python -m bench.web_bench

bench-batch: setup
	$(VENV_BIN)/python -m bench.batch_bench

bench-scoring: setup
	$(VENV_BIN)/python -m bench.scoring_sizing

bench-e2e: setup localstack-setup
	$(VENV_BIN)/python -m bench.e2e_bench

bench: bench-deps bench-lambda bench-web bench-batch bench-scoring bench-e2e

# Deploy to AWS from an empty account: ECR repositories and images, buckets, models, sam deploy
# (scripts/deploy_aws.py, README "Deploying to AWS"). --dry-run prints every command and runs none.
#   make deploy-aws ARGS="--region eu-west-1 --stack-name rides --alarm-email ops@example.com
#                         --model-writer-arn arn:aws:iam::123456789012:role/ModelWriter --dry-run"   (one line)
deploy-aws: setup
	$(VENV_BIN)/python -m scripts.deploy_aws $(ARGS)

clean:
	rm -rf .venv .tools .localstack mlruns mlflow.db .pytest_cache .ruff_cache .hypothesis
