"""The settings of one ``fairalloc serve`` process, fixed at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_LEEWAY_SECONDS = 300
"""The largest clock skew a deployment may allow on token times: five minutes, as Kerberos."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may make the service do (answered 413 or 422 beyond them)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_depth: int = 32
    max_batch: int = 1000


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything ``create_app`` needs. ``jwks`` is required: no endpoint answers anonymously.

    ``service_identity`` is the name the service itself acts under (its OS user or database
    role); the ledger records it beside every token subject it vouches for. ``role_map`` maps
    values of the token's roles claim to fairalloc roles (identity for the role names themselves).
    """

    jwks: Path
    issuer: str
    audience: str
    service_identity: str
    policies: Path | None = None
    ledger: str | None = None
    roles_claim: str = "roles"
    role_map: dict[str, str] = field(default_factory=dict)
    leeway_seconds: int = 30
    ledger_timeout_seconds: float = 10.0
    reload_interval_seconds: float = 1.0
    decision_log: str | None = None
    limits: Limits = field(default_factory=Limits)
