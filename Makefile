# mmslib: quick start is `make demo` then `make test` (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
OUT    ?= outputs
PM      = $(VENV)/bin/papermill --log-output --no-progress-bar
HTML    = $(VENV)/bin/jupyter nbconvert --to html --no-input

.PHONY: venv envs demo stress performance report test bench notebooks clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[bert,test]'
	touch $@

# The separate environment of every runtime that declares one (Runtime.env: requirements/<name>.txt;
# today triton and mlserver, whose pins clash with kserve's).
# The Go load generator (traffic: generator go) needs a Go toolchain, not installed here:
# apt-get install golang-go (its tests skip without it; .ci/run installs it).
envs: venv
	for e in $$($(PY) -m mmslib.runtimes envs); do bash scripts/setup-runtime-env.sh $$e || exit 1; done

stress: venv
	mkdir -p $(OUT)
	$(PM) notebooks/stress.ipynb $(OUT)/stress.ipynb -p output_dir $(OUT)/stress
	$(HTML) $(OUT)/stress.ipynb

performance: venv
	mkdir -p $(OUT)
	$(PM) notebooks/performance.ipynb $(OUT)/performance.ipynb -f params/perf-demo.yaml -p output_dir $(OUT)/performance
	$(HTML) $(OUT)/performance.ipynb

# SLO attainment under bursty, skewed load (a short run; params/traffic-*.yaml hold the fuller sweeps).
.PHONY: traffic
traffic: venv
	mkdir -p $(OUT)
	$(PM) notebooks/traffic.ipynb $(OUT)/traffic.ipynb -f params/traffic-demo.yaml -p output_dir $(OUT)/traffic
	$(HTML) $(OUT)/traffic.ipynb

# Every run directory under $(OUT) -> $(OUT)/report.ipynb, report.html (opens offline), report/*.csv|json
report: venv
	$(VENV)/bin/mmslib report $(OUT)

# Cold starts, churn, lazy loading and the simulator (a few minutes; params/coldstart-full.yaml: ~30 min).
.PHONY: coldstart
coldstart: venv
	mkdir -p $(OUT)
	$(PM) notebooks/coldstart.ipynb $(OUT)/coldstart.ipynb -f params/coldstart-quick.yaml -p output_dir $(OUT)/coldstart
	$(HTML) $(OUT)/coldstart.ipynb

# The main job on the local backend: both experiments, then the comparison report.
demo: stress performance traffic report
	@echo "Executed notebooks and HTML reports are in $(OUT)/"

test: venv envs
	$(VENV)/bin/pytest -q -ra

# The fast tier (under a minute, no servers): parameters, statistics, summaries, run directories,
# the report from synthetic runs, plug-in contracts. `make test` runs it too. (tests/conftest.py FAST_FILES)
.PHONY: test-fast
test-fast: venv
	$(VENV)/bin/pytest -q -ra -m "not slow"

# Longer reliability checks (not in `make test`): 20 interruptions per runtime over every
# experiment, 400 kills mid-write, every runtime for ports/server deaths/loopback; prints figures.
.PHONY: check-long
check-long: venv envs
	MMSLIB_LONG=1 MMSLIB_CHAOS_N=20 MMSLIB_WRITE_KILLS=400 $(PY) benchmarks/reliability_bench.py

bench: venv
	$(PY) benchmarks/stress_bench.py

# Notebooks are Jupytext sources notebooks/<name>.py paired with <name>.ipynb: edit either
# (JupyterLab, an editor), then sync the other.
notebooks: venv
	$(PY) -m mmslib.paramcell
	$(VENV)/bin/jupytext --sync notebooks/*.py

clean:
	rm -rf $(OUT)/*.ipynb $(OUT)/*.html $(OUT)/stress $(OUT)/performance
