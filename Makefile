# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test deep lint typecheck unit clean protos tools bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/suanli demo

lint: $(STAMP)
	$(BIN)/ruff check node federation protos tests
	$(BIN)/ruff format --check node federation protos tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -n 4 --dist load

# Debian packages the tests use: a real Prometheus and promtool, openssl for TLS certificates,
# systemd for systemd-analyze (the unit file's checks).
tools:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null \
		&& command -v systemd-analyze >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus openssl systemd >/dev/null; \
	else \
		echo "make test needs Debian's prometheus, openssl and systemd packages: sudo apt-get install prometheus openssl systemd" >&2; exit 1; \
	fi

test: tools lint typecheck unit

# The generated tests at five times the examples (hypothesis, schemathesis): a few minutes;
# .ci/run runs it after `make test`.
DEEP_TESTS := tests/test_schemathesis.py tests/test_properties.py tests/test_netting.py \
	tests/test_strict_input.py tests/test_statement_records.py tests/test_payouts.py
deep: tools $(STAMP)
	SUANLI_TEST_DEPTH=5 $(BIN)/pytest -q -n 4 --dist load $(DEEP_TESTS)

# The benchmark (about 12 minutes with the million-voucher growth case): docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/suanli bench --out docs/benchmarks-latest.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

protos: $(STAMP)
	$(BIN)/python protos/codegen.py
