# The two commands a new user needs: `make up` runs the stack, `make test` passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps up down test bench bench-logs bench-peers bench-scheduling bench-watch chaos lint mutants clean

install: $(STAMP)

# editable_mode=compat: the project's directory on sys.path (a .pth line), not setuptools'
# import-hook finder, which imports pathlib, re and importlib.util into every Python process
# the venv starts (30 ms each: the CLI, supervisord, each service and worker).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# Debian packages the tests and benchmarks run for real (redis, PostgreSQL, Prometheus,
# systemd-analyze, docker-compose, wrk, nginx); installs only what is missing.
system-deps:
	scripts/system-deps

up: install
	$(BIN)/ollamamax up

down: install
	$(BIN)/ollamamax down

test: install system-deps
	$(BIN)/pytest -q

# Start-up timing first: the gateway bench leaves CPU work behind (1,000 sockets closing).
BENCHES := bench/ports_check.py bench/logs.py bench/stack_up.py bench/gateway.py bench/restarts.py bench/top.py

bench: install system-deps
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# `logs --since 1h --grep X` on 200 MB of stamped logs against `grep X` over the same files.
bench-logs: install
	$(BIN)/python bench/logs.py

# kill -9 of services, the watcher and supervisord under client load: failures, recovery times,
# and what `down` leaves (must be nothing).
chaos: install
	$(BIN)/python bench/chaos.py

# `up --watch`: a watched save to a new process serving, against its own start-to-ready.
bench-watch: install
	$(BIN)/python bench/watch.py

# The stack beside direct, nginx and LiteLLM (its own virtualenv under .bench/), one run.
bench-peers: install system-deps
	$(BIN)/python bench/peers.py

# Issue 19: the scheduler beside least-in-flight, nginx round-robin and LiteLLM's router, on
# three stand-in nodes of 2 slots under Poisson load and a burst (BENCH_ARGS=--quick: shorter).
bench-scheduling: install system-deps
	$(BIN)/python bench/scheduling.py $(BENCH_ARGS)

# mutmut over the pure modules ([tool.mutmut] in pyproject.toml) against their unit tests;
# prints the surviving mutants and the score. MUTANTS_JOBS=2 workers by default.
mutants: install
	scripts/mutants

lint: install
	$(BIN)/ruff check ollamamax_stack tests bench
	$(BIN)/mypy ollamamax_stack

clean:
	rm -rf $(VENV) .ollamamax .pytest_cache .mypy_cache .ruff_cache
