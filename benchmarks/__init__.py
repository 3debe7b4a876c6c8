"""Benchmarks: `zoo bench` latency and throughput runs, and the pytest-benchmark suite."""
