"""The REST API (aiohttp): parse, authenticate, call one service method, map the result."""
