# hotline: `make run` sets up everything and starts the whole system; `make test` sets up the
# same and runs every test. Both work as root on a fresh Debian 12 from a clean clone, and are
# quick the second time (the apt packages, the venv and the Asterisk chroot are reused).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOTLINE := $(VENV)/bin/hotline
STAMPS := var/.stamps
# sip-tester: SIPp phones; espeak-ng+sox: prompts and test speech; debootstrap: the Asterisk chroot;
# chromium+fonts-wqy-microhei: browser tests with CJK glyphs; postgresql/redis: the scale-out path
APT_PACKAGES := python3-venv sip-tester espeak-ng sox libsox-fmt-all ffmpeg debootstrap \
	chromium fonts-wqy-microhei postgresql redis-server procps

.PHONY: setup apt venv asterisk run test test-fast fuzz soak test-nodes bench lint stop clean help

help:
	@echo "make run    set up everything and start the system (console on http://127.0.0.1:8000)"
	@echo "make test   set up everything and run every test"
	@echo "make fuzz   the fuzzers for minutes (HOTLINE_FUZZ_SECONDS a target, default 120)"
	@echo "make soak   load through the whole stack while its parts are killed (HOTLINE_SOAK_SECONDS, default 300)"
	@echo "make test-nodes  two Asterisk servers, two web nodes, more load, the console in chromium (HOTLINE_NODES_CALLS)"
	@echo "make setup  install without starting;  make bench  benchmarks;  make lint  ruff"
	@echo "make stop   stop Asterisk (nothing left mounted);  make clean  remove var/ and .venv"

setup: apt venv asterisk

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Missing Debian packages: $$missing — run make as root (or apt-get install them)"; exit 1; fi; \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

asterisk: venv
	$(HOTLINE) asterisk install

run: setup
	$(HOTLINE) seed
	$(HOTLINE) up

# two workers: the real-Asterisk tests (one Asterisk, one after another) on one, the rest on the other
# (tests/conftest.py groups them); TEST_WORKERS=0 runs everything in one process, as pytest alone does
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

test-fast: venv
	$(PY) -m pytest -m "not asterisk and not browser and not postgres"

# the fuzz tests (AMI and FastAGI parsers, the HTTP API through its OpenAPI description) run bounded
# in `make test`; here each target draws fresh random rounds for HOTLINE_FUZZ_SECONDS, keeps what
# fails under var/hypothesis/ to try first next time, and prints its figures (testkit/fuzz.py)
HOTLINE_FUZZ_SECONDS ?= 120
fuzz: venv
	HOTLINE_FUZZ=long HOTLINE_FUZZ_SECONDS=$(HOTLINE_FUZZ_SECONDS) $(PY) -m pytest -m fuzz \
	  --timeout=$$(( $(HOTLINE_FUZZ_SECONDS) * 3 + 300 )) tests

# the fault suite (tests/testkit/test_soak.py on testkit/soak.py): SIPp calls at the design rate
# through the whole stack, on its own copy of the chroot, while the web app, the CTI bridge, FastAGI
# and a transcription worker are killed -9 in turn and Asterisk restarts; then the counts (calls
# placed = logged, recordings, each transcribed once, tickets), recovery times and CPU are printed.
# About a minute of load in `make test`; HOTLINE_SOAK_SECONDS of load here, then the backlog drains
HOTLINE_SOAK_SECONDS ?= 300
soak: setup
	HOTLINE_SOAK_SECONDS=$(HOTLINE_SOAK_SECONDS) $(PY) -m pytest -s -p no:cacheprovider tests/testkit/test_soak.py

# issue #15's centre (tests/launch/test_centre_nodes.py): two Asterisk servers on copies of the chroot,
# three CTI candidates, a FastAGI each, two web nodes without the bridge, one PostgreSQL and one Redis;
# a bridge and a web node are killed -9 under load. `make test` places 10 calls a server at 1/s and
# follows the operator's live link with a websocket client; here HOTLINE_NODES_CALLS a server at
# HOTLINE_NODES_RATE a second (default 60 at 2/s), the operator in the real console page in chromium
HOTLINE_NODES_CALLS ?= 60
HOTLINE_NODES_RATE ?= 2
test-nodes: setup
	HOTLINE_NODES_CALLS=$(HOTLINE_NODES_CALLS) HOTLINE_NODES_RATE=$(HOTLINE_NODES_RATE) HOTLINE_NODES_BROWSER=1 \
	  $(PY) -m pytest -s -p no:cacheprovider tests/launch/test_centre_nodes.py

# every bench/*.py in turn (BENCH="store screen_pop" for some), then one table of their last lines,
# written to var/bench/summary.json with each figure beside the previous run's (bench/README.md)
bench: setup
	$(PY) -m testkit.benchrun $(BENCH)

lint: venv
	$(VENV)/bin/ruff check .

stop:
	-$(HOTLINE) asterisk stop

clean: stop
	rm -rf var $(VENV)
