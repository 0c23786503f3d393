"""Tests against real servers (redis-server, moto's server, the Genesys simulator) and no
Celery worker: the root conftest starts each server on first request.

A package, as every folder here is: see tests/unit/__init__.py.
"""
