"""One city's Suanli node: domain, storage, REST API and CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("suanli")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
