# User commands. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080
export OMP_NUM_THREADS ?= 1

.PHONY: setup run test bench emulators train drift-demo lint clean lock

# The deployed dependencies come from requirements.lock, every file checked
# against its hash (as Cloud Functions and the training image install them);
# the local tools from requirements-dev.txt on top.
$(STAMP): requirements.txt requirements.lock requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# pip-tools in a venv of its own, pinned like the rest, on the functions' Python
# (python311): the lock resolves for the interpreter that runs pip-compile.
LOCK_PYTHON ?= python3.11
LOCK_VENV := .venv-lock
LOCK_STAMP := $(LOCK_VENV)/.installed

$(LOCK_STAMP): requirements-lock-tools.txt
	test -x $(LOCK_VENV)/bin/python || $(LOCK_PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-lock-tools.txt
	touch $(LOCK_STAMP)

## make lock: rewrite requirements.lock (pins and hashes of every deployed package) from requirements.txt;
## run it after any change to requirements.txt (make test fails until you do)
# pip's own configuration is left out (PIP_CONFIG_FILE, PIP_FIND_LINKS): the hashes are PyPI's, whatever
# local index or wheel folder a machine is set up with.
lock: $(LOCK_STAMP)
	env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file requirements.lock requirements.txt

# checkov in a venv of its own: its pinned dependencies clash with ours.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

setup: $(STAMP) $(CHECKOV_STAMP)

# The project's bytecode, compiled once: no process start compiles it again, even where
# PYTHONDONTWRITEBYTECODE is set (~20 ms of every cold start, bench/peer_comparison.py).
BYTECODE := $(PY) -m compileall -q main.py local_server.py functions shared

## make run: train a first model if none exists, then serve every function on $(PORT)
run: $(STAMP)
	$(BYTECODE)
	$(PY) -m tools.cli bootstrap
	PORT=$(PORT) $(PY) local_server.py

## make test: Terraform formatting, then the whole suite, emulators included (started by the tests)
test: $(STAMP) $(CHECKOV_STAMP)
	terraform fmt -check -recursive infra
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest

## make bench: the benchmarks in bench/, figures printed and saved in bench/results/
bench: $(STAMP)
	$(BYTECODE)
	$(PY) -m bench.run_all

## make emulators: Firestore, Pub/Sub and fake-gcs-server on loopback, with the bucket, topics and
## push subscriptions to make run's $(PORT); ports from FIRESTORE_EMULATOR_PORT, PUBSUB_EMULATOR_PORT,
## STORAGE_EMULATOR_PORT; writes .local/emulators.env; Ctrl-C or SIGTERM stops all three
emulators: $(STAMP)
	PORT=$(PORT) exec $(PY) -m tests.emulators

## make train: the full candidate search on the reference data
train: $(STAMP)
	$(PY) -m tools.cli train

## make drift-demo: against a running `make run`: normal traffic, shifted traffic, drift, retrain
drift-demo: $(STAMP)
	$(PY) -m tools.cli drift-demo --url http://127.0.0.1:$(PORT)

clean:
	rm -rf .local bench/results

## make lint: ruff over the Python code
lint: $(STAMP)
	$(VENV)/bin/ruff check .
