# dnnbench: `make bench` and `make test` are the whole set-up (each creates .venv and installs on first use).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
BENCH_ARGS ?=

.DEFAULT_GOAL := help

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## create .venv and install dnnbench with pinned dependencies

.PHONY: bench
bench: $(STAMP) ## run the quick profile of every model in 32-true and bf16-mixed on every device here
	$(BIN)/dnnbench run --profile $(PROFILE) --precisions 32-true,bf16-mixed --devices auto --parallel auto $(BENCH_ARGS)

.PHONY: test
test: $(STAMP) ## run the test suite (fast; slow and GPU tests are opt-in markers)
	$(BIN)/python -m pytest -q

.PHONY: test-fast
test-fast: $(STAMP) ## the tests a developer runs while working: no process started, nothing compiled, no Ray
	$(BIN)/python -m pytest -q -m "not integration and not slow and not gpu"

.PHONY: lint
lint: $(STAMP) ## ruff check (the packages, tests and benchmarks)
	$(BIN)/ruff check bench lightning_modules datamodules registries tests benchmarks

.PHONY: typecheck
typecheck: $(STAMP) ## mypy over the packages (configured in pyproject.toml)
	$(BIN)/python -m mypy

.PHONY: compare
compare: $(STAMP) ## compare two results CSVs: make compare BASE=a.csv NEW=b.csv [THRESHOLD=5]
	$(BIN)/dnnbench compare $(BASE) $(NEW) $(if $(THRESHOLD),--threshold $(THRESHOLD))

.PHONY: gpu-check
gpu-check: ## every GPU acceptance step in one go, bundle in OUT (no CUDA: a reduced CPU form): make gpu-check OUT=dir
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m benchmarks.gpu_check $(or $(OUT),results/runs/gpu-check) $(GPU_CHECK_ARGS)

.PHONY: clean
clean: ## remove the virtualenv, caches and untracked run outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache lightning_logs wandb results/runs *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'
