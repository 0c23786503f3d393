"""Benchmarks against the real local stack (`make bench`); each prints its figures."""
