# dnnbench: `make bench` and `make test` are the whole set-up (each creates .venv and installs on first use).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs into the one .venv: what running needs (`make bench`: dnnbench and its runtime dependencies) and what
# developing needs on top (`make test`, lint, typecheck: the dev extra: pytest, ruff, mypy, ray, onnx, fvcore).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
# The GPU hosts' stack (torch 2.11, see constraints-gpu-hosts.txt) in a second environment, for make test-compat.
COMPAT_VENV := .venv-compat
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed
COMPAT_OUT ?= results/runs/compat
PROFILE ?= quick
BENCH_ARGS ?=

.DEFAULT_GOAL := help

# Each step says what it does and how long it may take; pip itself is quiet (its own lines run past 120 columns:
# every line make bench prints fits a terminal). The first install fetches ~3 GB (torch and its CUDA libraries);
# later ones come from pip's cache.
# constraints.txt's pins (pandas 3, numpy 2.3+) need Python 3.11: say so in one line rather than pip's resolver error
define make_venv
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dnnbench: \
		make installs the pins of constraints.txt, which need Python >= 3.11; $(PYTHON) is " + sys.version.split()[0] \
		+ ": PYTHON=python3.11 make ..., or pip install -e . (3.10: without the pins)")'
	@test -x $(BIN)/python || { echo "dnnbench: creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"; \
		$(PYTHON) -m venv $(VENV); }
	@echo "dnnbench: upgrading pip in $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip
endef

$(RUN_STAMP): pyproject.toml constraints.txt
	$(make_venv)
	@echo "dnnbench: installing dnnbench and what running needs (torch, lightning, wandb, ...: constraints.txt);"
	@echo "          the first time ~3 GB are downloaded: a few minutes"
	@$(BIN)/python -m pip install -q -c constraints.txt -e .
	@touch $(RUN_STAMP)
	@echo "dnnbench: installed into $(VENV) ($$(du -sh $(VENV) | cut -f1))"

$(STAMP): pyproject.toml constraints.txt
	$(make_venv)
	@echo "dnnbench: installing dnnbench with the dev extra (pytest, ruff, mypy, ray, onnx, ...: constraints.txt);"
	@echo "          the first time ~3 GB are downloaded: a few minutes"
	@$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP) $(RUN_STAMP)
	@echo "dnnbench: installed into $(VENV) ($$(du -sh $(VENV) | cut -f1))"

# pip's HTTP cache keeps nothing from this machine's package mirror (its responses carry no cache headers), so the
# hosts' wheels (torch 2.11's CUDA build is ~3 GB) are kept here, outside the clone: after the first build, every
# build (a fresh clone's included) installs from them offline, and downloads only when the pins change.
COMPAT_WHEELS ?= $(HOME)/.cache/dnnbench/wheels-gpu-hosts
COMPAT_PIP := $(COMPAT_BIN)/python -m pip
COMPAT_CONSTRAINTS := -c $(COMPAT_VENV)/constraints-main.txt -c constraints-gpu-hosts.txt

# constraints-main.txt: constraints.txt less the names constraints-gpu-hosts.txt pins and torch's CUDA runtime
# (nvidia-*, cuda-*: torch 2.11 pins its own); with the hosts' pins on top, the hosts' torch stack and main's
# versions of everything else.
$(COMPAT_STAMP): pyproject.toml constraints.txt constraints-gpu-hosts.txt
	test -x $(COMPAT_BIN)/python || $(PYTHON) -m venv $(COMPAT_VENV)
	awk -F'==' 'NR == FNR { sub(/[ \t]*#.*/, ""); if (NF == 2) pinned[tolower($$1)]; next } \
		{ name = tolower($$1) } !(name in pinned) && name !~ /^(nvidia|cuda)-/' \
		constraints-gpu-hosts.txt constraints.txt > $(COMPAT_VENV)/constraints-main.txt
	$(COMPAT_PIP) install -q --no-index --find-links $(COMPAT_WHEELS) $(COMPAT_CONSTRAINTS) -e '.[dev]' 2>/dev/null || { \
		echo "test-compat: downloading the GPU hosts' wheels into $(COMPAT_WHEELS)"; \
		$(COMPAT_PIP) download -q -d $(COMPAT_WHEELS) $(COMPAT_CONSTRAINTS) '.[dev]' setuptools wheel && \
		$(COMPAT_PIP) install -q --no-index --find-links $(COMPAT_WHEELS) $(COMPAT_CONSTRAINTS) -e '.[dev]'; }
	touch $(COMPAT_STAMP)

.PHONY: install
install: $(RUN_STAMP) ## create .venv and install dnnbench with its pinned runtime dependencies (what make bench needs)

.PHONY: install-dev
install-dev: $(STAMP) ## the same plus the dev extra (tests, lint, type check, Ray, ONNX): what make test needs

.PHONY: bench
bench: $(RUN_STAMP) ## run the quick profile of every model in 32-true and bf16-mixed on every device here
	$(BIN)/dnnbench run --profile $(PROFILE) --precisions 32-true,bf16-mixed --devices auto --parallel auto $(BENCH_ARGS)

.PHONY: test
test: $(STAMP) ## run the test suite (fast; slow and GPU tests are opt-in markers)
	$(BIN)/python -m pytest -q

.PHONY: test-fast
test-fast: $(STAMP) ## the tests a developer runs while working: no process started, nothing compiled, no Ray
	$(BIN)/python -m pytest -q -m "$(FAST_TIER)"

# The fast tier (make test-fast's selection: no process, compile or Ray), to keep the target near its 10 minutes;
# the sweeps below start the processes.
FAST_TIER := not integration and not slow and not gpu
# Every inference backend runs on a dense and a recurrent network (mlp, lstm), under a long time limit: the step
# checks that each backend works on torch 2.11, and a loaded CI machine's compiles must not turn that red.
# The reduced gpu-check sweeps two models, not twelve: the smoke sweep above ran all twelve in the same precisions,
# and its 270 s budget then reaches the later steps (large sizes, overhead probe, repeats) on torch 2.11 too.
# Its first step is `dnnbench check --devices cpu` (output in the bundle's check.txt), which must reach its verdict
# without a traceback and with no probe error; its exit 1 (load, other processes, a probe past its time limit) is
# the CI machine's state, not the code's. A check.txt without the verdict line fails the target.
BACKENDS := eager,compile,export,onnxruntime,int8

.PHONY: test-compat
test-compat: $(COMPAT_STAMP) ## the GPU hosts' stack (torch 2.11: constraints-gpu-hosts.txt) in .venv-compat: fast tests, smoke sweep, backends, check, gpu-check
	$(COMPAT_BIN)/python -m pytest -q -m "$(FAST_TIER)"
	rm -rf $(COMPAT_OUT)
	$(COMPAT_BIN)/dnnbench run --profile smoke --precisions 32-true,bf16-mixed --devices cpu --wandb disabled \
		--no-progress --out $(COMPAT_OUT)/smoke
	$(COMPAT_BIN)/python .ci/all_ok.py $(COMPAT_OUT)/smoke/results.csv
	$(COMPAT_BIN)/dnnbench run --profile smoke --models mlp,lstm --precisions 32-true --devices cpu --wandb disabled \
		--no-progress --infer-backends $(BACKENDS) --time-limit 900 --out $(COMPAT_OUT)/backends
	$(COMPAT_BIN)/python .ci/all_ok.py $(COMPAT_OUT)/backends/results.csv $(COMPAT_OUT)/backends/inference.csv
	$(MAKE) gpu-check BIN=$(COMPAT_BIN) OUT=$(COMPAT_OUT)/gpu-check GPU_CHECK_ARGS="--models mlp,lstm"
	tail -n 1 $(COMPAT_OUT)/gpu-check/check.txt | grep -q '^dnnbench check: ' && \
		! grep -qE 'Traceback|probe (error|unsupported)' $(COMPAT_OUT)/gpu-check/check.txt

.PHONY: lint
lint: $(STAMP) ## ruff check (the packages, tests and benchmarks)
	$(BIN)/ruff check bench lightning_modules datamodules registries tests benchmarks

.PHONY: typecheck
typecheck: $(STAMP) ## mypy over the packages (configured in pyproject.toml)
	$(BIN)/python -m mypy

.PHONY: compare
compare: $(RUN_STAMP) ## compare two results CSVs: make compare BASE=a.csv NEW=b.csv [THRESHOLD=5]
	$(BIN)/dnnbench compare $(BASE) $(NEW) $(if $(THRESHOLD),--threshold $(THRESHOLD))

.PHONY: gpu-check
gpu-check: ## every GPU acceptance step in one go, bundle in OUT (no CUDA: a reduced CPU form): make gpu-check OUT=dir
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m benchmarks.gpu_check $(or $(OUT),results/runs/gpu-check) $(GPU_CHECK_ARGS)

.PHONY: clean
clean: ## remove the virtualenv, caches and untracked run outputs
	rm -rf $(VENV) $(COMPAT_VENV) .pytest_cache .ruff_cache lightning_logs wandb results/runs *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'
