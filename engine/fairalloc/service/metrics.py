"""Prometheus metrics of one service process, in a registry of its own.

A registry per application (not the library's global one) keeps two applications in one
process — tests, an embedding host — from counting into each other. With ``--workers N`` each
worker process serves its own counters; scrape each, or run one process per port (see
docs/service.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    decisions: Counter
    refusals: Counter
    request_seconds: Histogram
    decision_seconds: Histogram
    ledger_seconds: Histogram
    decision_log_unwritten: Counter
    policies_loaded: Gauge


def new_metrics() -> Metrics:
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        decisions=Counter("fairalloc_decisions", "Allocation decisions answered",
                          ("kind", "policy"), registry=registry),
        refusals=Counter("fairalloc_refusals", "Requests refused, by HTTP status and error code",
                         ("status", "code"), registry=registry),
        request_seconds=Histogram("fairalloc_request_duration_seconds", "Request latency by route",
                                  ("method", "route"), buckets=_LATENCY_BUCKETS, registry=registry),
        decision_seconds=Histogram("fairalloc_decision_duration_seconds",
                                   "Time to compute one allocation (parse, validate, allocate)",
                                   buckets=_LATENCY_BUCKETS, registry=registry),
        ledger_seconds=Histogram("fairalloc_ledger_call_duration_seconds",
                                 "Time of one ledger call (a write is one append transaction)",
                                 ("step",), buckets=_LATENCY_BUCKETS, registry=registry),
        decision_log_unwritten=Counter("fairalloc_decision_log_unwritten",
                                       "Decision log lines that could not be written", registry=registry),
        policies_loaded=Gauge("fairalloc_policies_loaded", "Policy versions in the bundle",
                              registry=registry),
    )
