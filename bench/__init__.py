"""Benchmarks, run by ``./dev bench <name>`` (never by ``./dev test``); see ``bench/README.md``."""
