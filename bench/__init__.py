"""Benchmarks of Guilds against the baseline it runs on: one script per figure of
docs/PERFORMANCE.md.

Run one with `.venv/bin/python -m bench.fig1_messages [--quick]`, or all with `make bench`.
The shared pieces (interleaved A/B runner, statistics, table, JSON) are in bench/common.py.
"""
