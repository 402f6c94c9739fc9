# inpaintzoo — two commands on a fresh machine (Python 3.11): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.inpaintzoo-installed
PYTEST := $(BIN)/python -m pytest

.PHONY: install demo app test test-slow test-data test-notebooks test-gpu test-app test-all lint format bench bench-eval bench-speed bench-gpu clean

# Create the virtual environment if missing and install the package with its dev extras.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev,sweep,export,app]"
	@touch $(STAMP)

install: $(STAMP)

## The main job: tiny EdgeConnect on the embedded photos (stages 1 -> 2 -> 3), evaluated
## next to its untrained weights and OpenCV Telea / Navier-Stokes; writes outputs/demo/edgeconnect/
demo: $(STAMP)
	$(BIN)/inpaintzoo-train experiment=edgeconnect_demo

## The default test suite (CPU, 64 px, tiny widths; under ~15 minutes on 2 cores)
test: $(STAMP)
	$(PYTEST) -q

## The interactive app on 127.0.0.1 with the demo's checkpoint (trains it first when absent);
## more options: make app APP_ARGS="port=7861 share=true"
DEMO_CKPT := outputs/demo/edgeconnect/checkpoints/last.ckpt
app: $(STAMP)
	@test -f $(DEMO_CKPT) || $(MAKE) demo
	$(BIN)/inpaintzoo-app ckpt=$(DEMO_CKPT) $(APP_ARGS)

## The app end to end in headless Debian chromium (apt-installed when absent) with a tiny
## checkpoint of its own (INPAINTZOO_APP_CKPT=path: another); screenshots -> docs/app/
test-app: $(STAMP)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(PYTEST) -q -m app

test-slow: $(STAMP)
	$(PYTEST) -q -m slow

test-data: $(STAMP)
	$(PYTEST) -q -m data

test-notebooks: $(STAMP)
	$(PYTEST) -q -m notebook

test-gpu: $(STAMP)
	$(PYTEST) -q -m cuda

test-all: $(STAMP)
	$(PYTEST) -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

## Speed ratios measured in one run (see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/contextual_attention.py

## Evaluation runner img/s vs the bare forward (full-size EdgeConnect; CPU settings)
bench-eval: $(STAMP)
	$(BIN)/python benchmarks/eval_throughput.py --size 256 --num-samples 16 --batch-size 4 --repeats 2

## Speed switches (fp32 / bf16-mixed / channels_last / compile) on this machine's CPU
bench-speed: $(STAMP)
	$(BIN)/python benchmarks/speed_switches.py --device cpu

## The same ratios on a CUDA GPU (bigger model and batch)
bench-gpu: $(STAMP)
	$(BIN)/python benchmarks/speed_switches.py --device cuda --variant full --size 256 --batch-size 16
	$(BIN)/python benchmarks/eval_throughput.py --device cuda --num-samples 256 --batch-size 32

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
