# Two commands matter: `make run` starts Strongroom, `make test` runs every
# check. Both install what is missing into .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GENERATED := strongroom/v1/__init__.py
PROTOS := $(wildcard proto/strongroom/v1/*.proto)

CHROMIUM := /usr/bin/chromium
TESSERACT := /usr/bin/tesseract
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test check unit e2e browser bench reliability proto clean

$(INSTALLED): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "setuptools>=75" "grpcio-tools==1.85.1"
	$(BIN)/python proto/generate.py
	$(BIN)/pip install --quiet --no-build-isolation -e '.[dev]'
	touch $@

$(GENERATED): $(PROTOS) $(INSTALLED)
	$(BIN)/python proto/generate.py

proto: $(GENERATED)

# The browser tests drive Debian's Chromium; Playwright's own download is
# neither needed nor possible offline.
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq chromium

# Ingestion reads scanned pages and images with Debian's Tesseract (English
# data included); nothing is downloaded at run time.
$(TESSERACT):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq tesseract-ocr

install: $(INSTALLED) $(GENERATED) $(TESSERACT)

run: install
	$(BIN)/strongroom up

check: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit tests/contract

e2e: install
	$(BIN)/pytest tests/e2e

browser: install $(CHROMIUM)
	$(BIN)/pytest tests/browser

test: check $(CHROMIUM)
	$(BIN)/pytest

# The long reliability runs; `make test` runs a short version of each.
reliability: install
	NO_EGRESS_TESTS="tests/e2e/test_path.py tests/e2e/test_import.py tests/e2e/test_export.py tests/e2e/test_labeling.py tests/e2e/test_audit_trail.py tests/e2e/test_redaction_policy.py" \
		API_FUZZ_EXAMPLES=100 PARSER_FUZZ_EXAMPLES=2000 \
		FAULT_CASES=all FAULT_REPORT=benchmarks/results/faults.json \
		LOAD_USERS=100 LOAD_UPLOADERS=5 LOAD_SECONDS=300 LOAD_SEED_DOCUMENTS=5000 \
		$(BIN)/pytest tests/reliability

# Long measurements; `make test` runs a short version of each.
bench: install
	mkdir -p benchmarks/results
	$(BIN)/python -m benchmarks.pipeline_cost --documents 500 --json benchmarks/results/pipeline_cost.json
	$(BIN)/python -m benchmarks.audit_trail --opensearch --json benchmarks/results/audit_trail.json
	$(BIN)/python -m benchmarks.ingestion_pdf --pages 200 --large-pages 1000 --ocr-pages 5 --json benchmarks/results/ingestion_pdf.json
	$(BIN)/python -m benchmarks.labeling_queue --tasks 100000 --levels 1,50,200 --seconds 25 --json benchmarks/results/labeling_queue-$$(date -u +%F).json
	$(BIN)/python -m benchmarks.redaction --documents 400 --json benchmarks/results/redaction.json
	$(BIN)/python -m benchmarks.agreement --tasks 100000 --json benchmarks/results/agreement.json
	$(BIN)/python -m benchmarks.export --tasks 100000 --json benchmarks/results/export.json
	$(BIN)/python -m benchmarks.active_learning --sentences 3000 --budget 400 --json benchmarks/results/active_learning.json
	$(BIN)/python -m benchmarks.queue_during_training --paragraphs 3000 --answers 300 --annotators 4 --think 0.5 --seconds 30 --json benchmarks/results/queue_during_training.json

clean:
	rm -rf $(VENV) strongroom/v1 build *.egg-info .mypy_cache .ruff_cache .pytest_cache
