"""``fairalloc serve``: the engine and the ledger over HTTP, for an OMS and its integrators.

A thin shell, as the CLI is: every answer is computed by the library (:func:`fairalloc.allocate`)
or by a step of the recorded workflow (:mod:`fairalloc.ledger.workflow`). What this package adds
is what a network service needs and a command does not:

- ``auth`` — who calls: bearer tokens verified against a JWKS file; the subject is the actor;
- ``problems`` — every refusal as an RFC 9457 problem document with the CLI's code and pointer;
- ``body`` — request bodies read within bounds and parsed exactly (decimals, no duplicate keys);
- ``bundle`` — the policies served, from a folder (reloaded on change) and the ledger's registry;
- ``decisions`` — one JSON line per decision, never dropped silently;
- ``metrics`` — Prometheus counters and histograms;
- ``idempotency`` — retries with an ``Idempotency-Key`` answered as the first time;
- ``app`` and ``recorded`` — the application factory and the routes.
"""

from __future__ import annotations

from fairalloc.service.app import create_app
from fairalloc.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
