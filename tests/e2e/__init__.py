"""End-to-end tests: each file starts a real Celery worker, in this process
(`stack.in_process_worker`) or as processes, over the real servers.

A package, as every folder here is: see tests/unit/__init__.py.
"""
