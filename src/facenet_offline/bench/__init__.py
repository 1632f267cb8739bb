"""Benchmarks and the peers they measure against."""
