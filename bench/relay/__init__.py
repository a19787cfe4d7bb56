"""Relay benchmark: the real service under load beside a bare aiohttp app and a relay.

Run `python -m bench.relay` (see bench/README.md).
"""
