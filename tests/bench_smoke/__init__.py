"""The benchmarks in `--quick` mode, and their report on small results files.

A package, as every folder here is: see tests/unit/__init__.py.
"""
