"""Benchmarks: ``python -m bench`` runs every ``bench/bench_*.py`` module's ``main()``.

Benchmarks print figures; they assert nothing. Speed is measured here, never in unit tests.
"""
