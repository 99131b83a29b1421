"""One city's Suanli node: domain, storage, REST API and CLI."""
