# Two commands do everything (see README):  make demo   and   make test
# Both build .venv from requirements.txt (every dependency pinned there) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo

# DDS isolation for everything started from here: loopback discovery only, a private domain
# (0..101) per run, and ROS logs in a temporary folder.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell $(PYTHON) -c "import random; print(random.randint(0, 101))")
export ROS_LOG_DIR ?= $(shell mktemp -d -t bildmacro-roslog-XXXXXX)

.PHONY: faults impostor network venv demo experiment test test-fast bench bounds bodies clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation --use-pep517 -e .
	touch $(STAMP)

## The main job: 12 agent processes over real DDS (config/demo.yaml), figures in $(OUT)
demo: $(STAMP)
	$(BIN)/bildmacro swarm --config demo --out $(OUT) --overwrite --animation
	@echo "figures: $(OUT)/snapshots.png $(OUT)/convergence.png $(OUT)/robots.png $(OUT)/swarm.gif"

## The paper's experiment (N = 20, 20000 iterations) in one process, with the step sizes that converge
## (config/default.yaml; the `paper` preset holds the printed ones, which do not): figures in runs/experiment
experiment: $(STAMP)
	$(BIN)/bildmacro simulate --config default --out runs/experiment --overwrite
	@echo "figures: runs/experiment/convergence.png runs/experiment/snapshots.png"

## Every test, slow ones included (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Skip the slow tests while iterating
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_kernel.py
	$(BIN)/python benchmarks/bench_large.py
	$(BIN)/python benchmarks/bench_swarm.py
	$(BIN)/python benchmarks/bench_live.py

## How close honest neighbour messages come to the plausibility bounds (docs/security.md's table)
bounds: $(STAMP)
	$(BIN)/python benchmarks/study_bounds.py

## Robots with bodies, with and without the safety filter (docs/robots.md's table and docs/bodies.png)
bodies: $(STAMP)
	$(BIN)/python benchmarks/study_bodies.py --out runs/bodies --iterations 600 --targets demo
	$(BIN)/python benchmarks/study_bodies.py --out runs/bodies --iterations 600 --targets letter --agents 30 \
		--picture docs/bodies.png

faults: $(STAMP)
	$(BIN)/python benchmarks/study_faults.py --out runs/faults

## An impostor of one agent, each kind of forgery, writer checks on and off (docs/security.md's table)
impostor: $(STAMP)
	$(BIN)/python benchmarks/study_impostor.py --out runs/impostor

## Robots on separate emulated computers over a lossy network (needs root): docs/deployment.md's table
network: $(STAMP)
	$(BIN)/python benchmarks/study_network.py --out runs/network

clean:
	rm -rf $(VENV) runs .pytest_cache
