"""One city's Suanli node: domain, storage, REST API and CLI."""

import os
from importlib.metadata import PackageNotFoundError, version

# gRPC's C core writes its own diagnostics straight to stderr, outside the node's log format
# (with --log-format json, every line must be one JSON object). What matters of them reaches
# the node as exceptions and is logged; set GRPC_VERBOSITY=INFO to see them raw when debugging.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

try:
    VERSION = version("suanli")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
