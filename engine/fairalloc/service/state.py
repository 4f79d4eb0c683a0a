"""What one service process holds: its configuration, verifier, policies, ledger, logs and metrics.

Routes reach it through the :func:`service` dependency. Ledger calls go through
:meth:`Service.ledger_call`: on a thread pool of their own (the size of the ledger's connection
pool, so no more threads wait on the database than it can serve), each bounded by the configured
timeout and timed into ``fairalloc_ledger_call_duration_seconds``. A call that times out is
answered 504; its transaction may still commit or roll back on its own — a retry with the same
``Idempotency-Key`` is then answered by whichever happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

from fairalloc.errors import Diagnostic, ExitCode, FairallocError, InputError, Location
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import Ledger
from fairalloc.plan import Policy
from fairalloc.service.auth import Verifier
from fairalloc.service.bundle import Bundle
from fairalloc.service.config import ServiceConfig
from fairalloc.service.decisions import DecisionLog
from fairalloc.service.idempotency import DatabaseStore, MemoryStore, Store
from fairalloc.service.metrics import Metrics, new_metrics
from fairalloc.service.problems import Problem, problem

T = TypeVar("T")
log = logging.getLogger("fairalloc.service")

LEDGER_THREADS = 4


WorkflowActor = Actor
"""What the ledger's workflow steps take as their ``actor`` argument."""


def workflow_actor(actor: Actor) -> WorkflowActor:
    """The actor as the ledger's workflow steps take it: the token's subject, vouched for by the
    service's own identity (``actor.service``), which the ledger checks against its connection.

    Every call of a workflow step passes its actor through here and nowhere else."""
    return actor


class Service:
    """The state shared by the routes of one application."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.metrics: Metrics = new_metrics()
        self.ledger: Ledger | None = Ledger(config.ledger, create=False) if config.ledger else None
        # With a ledger, the service vouches for token subjects as the identity the ledger
        # authenticates for its connection (the OS user, or the database role), never a name given.
        identity = self.ledger.identity().name if self.ledger is not None else config.service_identity
        self.verifier = Verifier(config.jwks, issuer=config.issuer, audience=config.audience,
                                 service_identity=identity,
                                 roles_claim=config.roles_claim, role_map=config.role_map,
                                 leeway_seconds=config.leeway_seconds)
        self.bundle = Bundle(config.policies)
        self.idempotency: Store = (DatabaseStore(self.ledger.engine) if self.ledger is not None
                                   else MemoryStore())
        self.decisions = DecisionLog(config.decision_log, self.metrics.decision_log_unwritten)
        self._threads = ThreadPoolExecutor(LEDGER_THREADS, thread_name_prefix="fairalloc-ledger")
        self._recorded: dict[tuple[str, int], Policy] = {}
        self.refresh_policies()

    def refresh_policies(self) -> None:
        """Reload the bundle if its folder changed, and publish the count as a gauge."""
        self.bundle.refresh()
        self.metrics.policies_loaded.set(len(self.bundle.versions))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.decisions.close()
        if self.ledger is not None:
            self.ledger.close()

    def require_ledger(self) -> Ledger:
        if self.ledger is None:
            raise problem(503, "ledger-not-configured", "this service runs without a ledger",
                          hint="start it with --ledger URL to serve the recorded workflow",
                          exit_code=ExitCode.LEDGER)
        return self.ledger

    async def ledger_call(self, step: str, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking ledger call off the event loop, bounded and timed (module docstring)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._threads, lambda: function(*args)),
                                          self.config.ledger_timeout_seconds)
        except TimeoutError:
            raise problem(504, "ledger-timeout", f"the ledger did not answer within "
                          f"{self.config.ledger_timeout_seconds:g} s; the step may or may not have been "
                          "recorded", hint="retry with the same Idempotency-Key, or read the order's record",
                          exit_code=ExitCode.LEDGER) from None
        finally:
            self.metrics.ledger_seconds.labels(step).observe(time.perf_counter() - started)

    def registry_policy(self, ref: str) -> Policy:
        """A policy version from the ledger's registry (blocking; recompiled once, then cached:
        a published version never changes)."""
        from fairalloc.ledger import workflow

        record = workflow.find_policy(self.require_ledger(), ref)
        key = (record.id, record.version)
        cached = self._recorded.get(key)
        if cached is None:
            cached = self._recorded[key] = workflow.load_recorded_policy(record)
        return cached

    async def resolve_policy(self, ref: Any) -> Policy:
        """The policy a request names: from the bundle, else (off the loop) the ledger's registry."""
        if not isinstance(ref, str):
            raise Problem.of(InputError(Diagnostic("policy-reference", "'policy' must be a string, "
                                                   "ID or ID@VERSION", Location(pointer="/policy"))))
        try:
            return self.bundle.resolve(ref, None)
        except Problem as missing:
            if self.ledger is None or missing.code != "policy-unknown":
                raise
        try:
            return await self.ledger_call("policy-lookup", self.registry_policy, ref)
        except FairallocError as error:
            raise Problem.of(error) from None


async def service(request: Request) -> Service:
    """The dependency that gives a route its application's :class:`Service`."""
    found: Service = request.app.state.service
    return found
