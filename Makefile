# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres deep lint typecheck unit clean protos tools bench wheels image image-tools image-test

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
	$(BIN)/pytest -q -n 4 --dist load --ignore=tests/image $(DEEP_ONLY:%=--ignore=%)

# Debian packages the tests use: a real Prometheus and promtool, openssl for TLS certificates,
# systemd for systemd-analyze (the unit file's checks), and for the platform's browser tests
# chromium with its driver and the Noto CJK fonts (without them Chinese renders as boxes), and
# PostgreSQL's server programs (the tests start throwaway clusters: node/tools/pgcluster.py).
TOOL_PACKAGES := prometheus openssl systemd chromium chromium-driver fonts-noto-cjk postgresql
tools:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null \
		&& ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		&& command -v systemd-analyze >/dev/null && command -v chromium >/dev/null \
		&& command -v chromedriver >/dev/null && fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TOOL_PACKAGES) >/dev/null; \
	else \
		echo "make test needs Debian's packages: sudo apt-get install $(TOOL_PACKAGES)" >&2; exit 1; \
	fi

test: tools lint typecheck unit

# The store, service, money-invariant, federation and fault tests again, with every node's
# books in PostgreSQL (a throwaway cluster per test process, tests/engines.py), a real
# Prometheus scraping them too; the tests of SQLite's own machinery are skipped there, and the
# browser journey, the installed wheel and the benchmark smoke test (SQLite's files) are left
# to make test. .ci/run runs it after make test.
test-postgres: tools $(STAMP)
	SUANLI_TEST_ENGINE=postgresql $(BIN)/pytest -q -n 4 --dist load --ignore=tests/image \
		--ignore=tests/test_platform.py --ignore=tests/test_installed.py \
		--ignore=tests/test_bench.py $(DEEP_ONLY:%=--ignore=%)

# The generated tests at five times the examples (hypothesis, schemathesis): a few minutes;
# .ci/run runs it after `make test`.
# DEEP_ONLY: long runs that make test leaves out: kill -9 at each step of the exchange
# between cities (six three-node runs), and schemathesis against every role (about two
# minutes of a worker's time at depth 1, and it runs at depth 5 here anyway).
DEEP_ONLY := tests/test_clearing_faults.py tests/test_schemathesis.py
DEEP_TESTS := tests/test_properties.py tests/test_netting.py \
	tests/test_strict_input.py tests/test_statement_records.py tests/test_payouts.py $(DEEP_ONLY)
deep: tools $(STAMP)
	SUANLI_TEST_DEPTH=5 $(BIN)/pytest -q -n 4 --dist load $(DEEP_TESTS)

# The container image (ops/Dockerfile): the package's and its dependencies' wheels first, so
# that the build needs no network. CONTAINER=docker works too; BASE picks the base image.
CONTAINER ?= podman
IMAGE ?= localhost/suanli:latest
# Debian's runc as podman's runtime, and explicit limits: these machines refuse the defaults.
BUILD_FLAGS ?= $(if $(filter podman,$(CONTAINER)),--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
wheels: $(STAMP)
	rm -rf build/wheels
	$(BIN)/python -m pip wheel --quiet --wheel-dir build/wheels .
image: wheels
	$(CONTAINER) build $(BUILD_FLAGS) $(if $(BASE),--build-arg BASE=$(BASE)) $(if $(filter podman,$(CONTAINER)),--format docker) -f ops/Dockerfile -t $(IMAGE) .

# Debian packages the image test uses: podman with Debian's runc, and debootstrap for a base
# image made here (no registry is reachable on these machines).
image-tools:
	@if command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap uidmap slirp4netns >/dev/null; \
	else \
		echo "make image-test needs Debian's podman, runc and debootstrap: sudo apt-get install podman runc debootstrap" >&2; exit 1; \
	fi

# The image built and a three-city federation run in containers (a few minutes: .ci/run runs
# it after make deep). docs/operations.md, "In containers", says what it checks.
image-test: image-tools $(STAMP)
	$(BIN)/pytest -q tests/image

# The benchmark (about 12 minutes with the million-voucher growth case): docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/suanli bench --out docs/benchmarks-latest.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

protos: $(STAMP)
	$(BIN)/python protos/codegen.py
