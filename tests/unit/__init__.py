"""Fast unit tests: no server, no socket, no sleep.

A package, so that its conftest is `unit.conftest` and never shadows `tests/conftest.py`.
"""
