# Two commands: `make demo` (set up, train the demo runs, open JupyterLab) and `make test`.
# Both install what they need themselves: the virtual env, the npm packages, Debian's chromium.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := dev,demo,mlflow,postgres,e2e
DEMO_DIR ?= demo-runs
PORT ?= 8888

.PHONY: demo test setup js chromium unit e2e lint bench demo-runs

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed js

# The front end is bundled into src/rungroup/static/ (git-ignored) by esbuild.
js:
	@if [ -f js/package.json ]; then \
		npm --prefix js ci --no-audit --no-fund --loglevel=error && npm --prefix js run build; \
	fi

# Browser tests drive Debian's chromium; Playwright cannot download its own browser here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo-runs: $(VENV)/.installed
	@if [ -d "$(DEMO_DIR)" ]; then echo "demo runs already in $(DEMO_DIR)/ (delete it yourself to retrain)"; \
	else $(BIN)/rungroup demo "$(DEMO_DIR)"; fi

# JupyterLab refuses to start as root unless told to; this machine's user is root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# NUMPY_MADVISE_HUGEPAGE=0: no kernel memory compaction stalls on fresh arrays
# (docs/troubleshooting.md, "Slow smoothing on Linux")
demo: setup demo-runs
	RUNGROUP_DEMO_DIR="$(abspath $(DEMO_DIR))" NUMPY_MADVISE_HUGEPAGE=0 \
		$(BIN)/jupyter lab notebooks/quickstart.ipynb \
		--ip=127.0.0.1 --port=$(PORT) --no-browser --ServerApp.open_browser=False $(ROOT_FLAG)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	@if [ -f js/package.json ]; then npm --prefix js run typecheck; fi

unit: setup
	$(BIN)/python -m pytest tests/unit -q

e2e: setup chromium
	$(BIN)/python -m pytest tests/e2e -q

test: setup chromium lint
	npm --prefix js test
	$(BIN)/python -m pytest tests -q

bench: setup
	$(BIN)/python -m benchmarks
