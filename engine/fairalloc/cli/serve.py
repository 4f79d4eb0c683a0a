"""``fairalloc serve``: the engine and the ledger as an HTTP service (see docs/service.md).

A thin shell over :func:`fairalloc.service.create_app` and uvicorn. The application is built once
here before the server starts, so a bad JWKS, an unreachable ledger or an unreadable policy
folder stops the command with its documented exit status instead of failing requests later.
With ``--workers N`` uvicorn starts N processes, each building its own application from the same
settings (passed to them in the environment).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
from pathlib import Path
from typing import Any

from fairalloc.cli._ledger import add_ledger_option

_SETTINGS_ENV = "FAIRALLOC_SERVE_SETTINGS"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve allocation and the recorded workflow over HTTP",
        description="Serve the engine (stateless allocation) and, with --ledger, the recorded "
        "workflow over HTTP, for callers holding bearer tokens signed by a key of --jwks.",
    )
    parser.add_argument("--policies", metavar="DIR", type=Path,
                        help="folder of policy files (every YAML file with a 'fairalloc:' key), reloaded on change")
    add_ledger_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--jwks", required=True, type=Path, metavar="FILE",
                        help="JWKS file with the public keys that sign callers' tokens")
    parser.add_argument("--issuer", required=True, metavar="ISS", help="the tokens' required 'iss'")
    parser.add_argument("--audience", required=True, metavar="AUD", help="the tokens' required 'aud'")
    parser.add_argument("--roles-claim", default="roles", metavar="NAME",
                        help="the token claim holding the caller's roles (default: roles)")
    parser.add_argument("--role-map", action="append", default=[], metavar="VALUE=ROLE",
                        help="map a value of the roles claim to a role (trader, pm, cco, admin, auditor); repeat")
    parser.add_argument("--leeway", type=_leeway, default=30, metavar="SECONDS",
                        help="clock skew allowed on token times, at most 300 (default: 30)")
    parser.add_argument("--ledger-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="longest wait for one ledger call (default: 10)")
    parser.add_argument("--decision-log", metavar="FILE",
                        help="append one JSON line per decision here ('-' for stdout)")
    parser.add_argument("--service-identity", default=None, metavar="NAME",
                        help="the name this service acts under (default: the OS user)")
    parser.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024, metavar="N",
                        help="largest request body accepted (default: 8 MiB)")
    parser.add_argument("--reload-interval", type=float, default=1.0, metavar="SECONDS",
                        help="how often the policy folder is checked for changes (default: 1)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)")
    parser.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")
    parser.set_defaults(handler=run)


def _leeway(text: str) -> int:
    from fairalloc.service.config import MAX_LEEWAY_SECONDS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of seconds") from None
    if not 0 <= value <= MAX_LEEWAY_SECONDS:
        raise argparse.ArgumentTypeError(f"the leeway is 0 to {MAX_LEEWAY_SECONDS} seconds")
    return value


def _role_map(items: list[str]) -> dict[str, str]:
    from fairalloc.errors import Diagnostic, InputError
    from fairalloc.service.auth import ROLES

    mapping: dict[str, str] = {}
    for item in items:
        value, _, role = item.partition("=")
        if not value or role not in ROLES:
            raise InputError(Diagnostic("bad-role-map", f"not VALUE=ROLE with a role of {', '.join(ROLES)}: {item!r}"))
        mapping[value] = role
    return mapping


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from fairalloc.service import ServiceConfig, create_app
    from fairalloc.service.config import Limits

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServiceConfig(
        jwks=args.jwks, issuer=args.issuer, audience=args.audience,
        service_identity=args.service_identity or getpass.getuser(),
        policies=args.policies, ledger=args.ledger, roles_claim=args.roles_claim,
        role_map=_role_map(args.role_map), leeway_seconds=args.leeway,
        ledger_timeout_seconds=args.ledger_timeout, reload_interval_seconds=args.reload_interval,
        decision_log=args.decision_log, limits=Limits(max_body_bytes=args.max_body_bytes),
    )
    app = create_app(config)  # checks the settings: a bad one stops here with its exit status
    if args.workers > 1:
        app.state.service.close()  # each worker builds its own
        os.environ[_SETTINGS_ENV] = _settings_text(config)
        _run_workers(uvicorn.Config("fairalloc.cli.serve:worker_app", factory=True, host=args.host,
                                    port=args.port, workers=args.workers, access_log=args.access_log))
    else:
        uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log)
    return 0


def _run_workers(config: Any) -> None:
    """Run ``config.workers`` processes on one listening socket, as ``uvicorn.run`` does, but on
    the socket of :func:`tcp_listener`."""
    from uvicorn.supervisors import Multiprocess

    try:
        Multiprocess(config, sockets=[tcp_listener(config)]).run()
    except KeyboardInterrupt:
        pass


def tcp_listener(config: Any) -> Any:
    """The listening socket uvicorn binds for ``config``, wrapped again so that it says it is TCP.

    uvicorn binds the socket its worker processes share with its protocol number left at 0; the
    accepted connections inherit it, and asyncio sets ``TCP_NODELAY`` only on sockets that report
    ``IPPROTO_TCP`` (uvicorn issue 3149). Without it every answer on a kept-alive connection
    waited for the client's delayed ACK: about 44 ms a request with ``--workers 2``, against about
    1 ms with one worker. The same descriptor, with its protocol named."""
    import socket

    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound
    tcp = socket.socket(bound.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=bound.detach())
    tcp.set_inheritable(True)
    return tcp


def _settings_text(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), default=str)


def worker_app() -> Any:
    """The application of one worker process, from the settings the parent put in the environment."""
    from fairalloc.service import ServiceConfig, create_app
    from fairalloc.service.config import Limits

    settings = json.loads(os.environ[_SETTINGS_ENV])
    settings["jwks"] = Path(settings["jwks"])
    settings["policies"] = Path(settings["policies"]) if settings["policies"] else None
    settings["limits"] = Limits(**settings["limits"])
    return create_app(ServiceConfig(**settings))
