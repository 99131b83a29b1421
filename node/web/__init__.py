"""The platform: server-rendered pages for holders, providers and operators (docs/platform.md)."""
