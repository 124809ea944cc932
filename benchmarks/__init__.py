"""Benchmarks: one script per figure (``python benchmarks/<name>.py``); see docs/benchmarks.md.

A package so that the node benchmark's child processes start by module path (``python -m
benchmarks.node_bench.relay``); the scripts themselves run as files and import :mod:`_setup` first.
"""
