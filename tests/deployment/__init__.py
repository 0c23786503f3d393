"""The deployment files (compose, the SAM template, the Dockerfile, Flower's configuration),
read as files or run as processes.

A package, as every folder here is: see tests/unit/__init__.py.
"""
