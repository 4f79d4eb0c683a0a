"""A real ``fairalloc serve`` process on a free 127.0.0.1 port, and tokens signed by test keys.

The keys are generated here with ``cryptography`` (RSA, P-256 and Ed25519), their public halves
written to a JWKS file the server is started with; ``mint`` signs tokens with any of them — or
with a key the server does not know, under a known key id, to test refusals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from fairalloc.client import Client

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://idp.example.test"
AUDIENCE = "fairalloc"
ADMIN = "admin.root"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Keys:
    """The signing keys of the test identity provider, by key id, and one stranger's key."""

    private: dict[str, tuple[PrivateKey, str]]
    stranger: PrivateKey
    jwks: Path

    def mint(self, sub: str, roles: list[str] | None = None, *, kid: str = "ed-1",
             audience: str = AUDIENCE, issuer: str = ISSUER, expires_in: int = 300,
             not_before: int | None = None, sign_with: PrivateKey | None = None,
             extra: dict[str, Any] | None = None) -> str:
        key, algorithm = self.private[kid]
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iss": issuer, "aud": audience, "iat": now,
                                  "exp": now + expires_in, "roles": roles or []}
        if not_before is not None:
            claims["nbf"] = now + not_before
        claims.update(extra or {})
        return jwt.encode(claims, sign_with or key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    private: dict[str, tuple[PrivateKey, str]] = {
        "rsa-1": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        "ec-1": (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        "ed-1": (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    }
    entries = []
    for kid, (key, algorithm) in private.items():
        if algorithm == "RS256":
            entry = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)  # type: ignore[union-attr]
        elif algorithm == "ES256":
            entry = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)  # type: ignore[union-attr]
        else:
            entry = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)  # type: ignore[union-attr]
        entries.append({**entry, "kid": kid, "use": "sig"})
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    import json

    path.write_text(json.dumps({"keys": entries}), "utf-8")
    return Keys(private, ed25519.Ed25519PrivateKey.generate(), path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """One ``fairalloc serve`` subprocess; ``client(token)`` talks to it over its socket."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    clients: list[Client] = field(default_factory=list)

    def client(self, token: str | None = None) -> Client:
        made = Client(self.url, token)
        self.clients.append(made)
        return made

    def stop(self) -> None:
        for made in self.clients:
            made.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def fairalloc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fairalloc", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def start_server(keys: Keys, folder: Path, *options: str, wait: float = 60.0) -> Server:
    """Start ``fairalloc serve`` with the test JWKS, wait until ``/healthz`` answers."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    command = [sys.executable, "-m", "fairalloc", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--jwks", str(keys.jwks), "--issuer", ISSUER, "--audience", AUDIENCE,
               "--service-identity", "svc.fairalloc", *options]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"fairalloc serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"fairalloc serve did not answer within {wait} s:\n{log.read_text()}")


@pytest.fixture
def serve(keys: Keys, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers for one test; every one is stopped afterwards."""
    started: list[Server] = []

    def start(*options: str) -> Server:
        server = start_server(keys, tmp_path, *options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def bootstrap(url: str) -> str:
    """Initialise a ledger for a service and return the URL the service connects with.

    The service vouches for token subjects as the identity the ledger authenticates for its
    connection, which must hold the ``service`` role; the token subject ``ADMIN`` is the firm's
    admin. On SQLite that identity is the OS user running the tests; on PostgreSQL it is a writer
    role (``clerk``), as deployed: the schema's owner bootstraps and sets up the role split only."""
    from sqlalchemy import make_url

    from fairalloc.ledger.identity import os_user

    if url.startswith("postgresql"):
        identity = "clerk"
        writer = make_url(url).set(username=identity).render_as_string(hide_password=False)
        steps = [(url, ("ledger", "init", "--admin", identity)),
                 (url, ("ledger", "roles", "--writer", identity))]
    else:
        identity, writer = os_user(), url
        steps = [(url, ("ledger", "init", "--admin", identity))]
    steps += [(writer, ("ledger", "user", "grant", identity, "service")),
              (writer, ("ledger", "user", "grant", ADMIN, "admin"))]
    for where, step in steps:
        done = fairalloc(*step, "--ledger", where)
        assert done.returncode == 0, (step, done.stderr)
    return writer
