# FedLedger: `make demo` runs the whole product on this machine; `make test` runs every test.
# Both install what is missing first: a virtualenv with the Python dependencies, the compiled
# ABCI protobuf types, and the pinned CometBFT and Kubo binaries (go install, into ./bin).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(CURDIR)/bin
export COMETBFT_BIN ?= $(BIN)/cometbft
export IPFS_BIN ?= $(BIN)/ipfs
export GETH_BIN ?= $(BIN)/geth
PYTEST_ARGS ?=

.PHONY: all install binaries proto demo test unit integration lint typecheck bench clean contracts

all: install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,train,inference,critical,bench]'
	touch $@

abci_app/proto/.built: $(VENV)/.installed $(wildcard abci_app/proto/*.proto) abci_app/proto/build.py
	$(PY) -m fedledger.abci_app.proto.build
	touch $@

proto: abci_app/proto/.built

$(BIN)/cometbft $(BIN)/ipfs $(BIN)/geth: $(VENV)/.installed
	env -u COMETBFT_BIN -u IPFS_BIN -u GETH_BIN $(VENV)/bin/fedledger localnet install --bin-dir $(BIN) --kubo --geth

binaries: $(BIN)/cometbft $(BIN)/ipfs $(BIN)/geth

# The Solidity compiler: solc-js pinned in contracts/package-lock.json, from the npm registry.
contracts/node_modules/.installed: contracts/package.json contracts/package-lock.json
	npm ci --prefix contracts --no-audit --no-fund
	touch $@

# Rebuild contracts/build/*.json (committed; a test checks they are reproducible).
contracts: contracts/node_modules/.installed
	$(PY) contracts/build.py

install: $(VENV)/.installed proto binaries contracts/node_modules/.installed

demo: install
	$(VENV)/bin/fedledger demo

# fedledger/ spells the installed layout with one symlink per folder, so mypy needs nothing more.
typecheck: install
	$(VENV)/bin/mypy

lint: install
	$(VENV)/bin/ruff check .

unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

integration: install
	$(PY) -m pytest -q -m integration tests/integration $(PYTEST_ARGS)

# FEDLEDGER_NO_SKIP: a test that would skip for want of a binary fails instead, so CI cannot go
# green without having run the integration tests against the real CometBFT and Kubo.
test: install lint typecheck
	FEDLEDGER_NO_SKIP=1 $(PY) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(VENV)/bin/fedledger bench chain

clean:
	rm -rf $(VENV) build bin abci_app/proto/*_pb2.py abci_app/proto/*_pb2.pyi abci_app/proto/.built .demo .localnet contracts/node_modules
