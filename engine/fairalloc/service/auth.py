"""Who calls: bearer tokens (JWT) verified against the keys of a JWKS file.

The contract:

- the signature is checked with a key of the JWKS chosen by the token's ``kid`` (or the only key);
  the algorithm is the *key's* (its ``alg``, else the one its type and curve imply), never the
  token header's alone: a header naming another algorithm is refused. Only asymmetric algorithms
  are accepted — a JWKS holding a symmetric (``oct``) key is refused at start-up, so a public key
  can never serve as an HMAC secret, and ``none`` is never accepted;
- ``iss``, ``aud``, ``exp`` and ``sub`` are required, ``nbf`` and ``iat`` checked when present,
  with a bounded leeway for clock skew;
- the subject becomes the :class:`~fairalloc.ledger.identity.Actor` every ledger event records,
  beside the service's own identity; nothing in a request body can name the actor;
- the roles claim (its name configurable, a list or a space-separated string) is mapped to
  fairalloc's roles; values that map to none are ignored.

A missing or unacceptable token is a 401 problem with a ``WWW-Authenticate`` challenge (RFC 6750).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from fairalloc.errors import Diagnostic, ExitCode, FileAccessError, Location
from fairalloc.ledger.identity import Actor
from fairalloc.names import NameProblem, normalise
from fairalloc.service.config import MAX_LEEWAY_SECONDS
from fairalloc.service.problems import Problem, problem

ROLES = ("trader", "pm", "cco", "admin", "auditor")
"""The roles a token may carry: the ledger's roles, and ``auditor`` (read-only)."""

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA"})
REALM = "fairalloc"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the actor the ledger records and the roles its token grants."""

    actor: Actor
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token whose signature and claims were checked: only its times can change its verdict."""

    principal: Principal
    expires: float
    not_before: float | None

    def still_valid(self, now: float, leeway: int) -> bool:
        return now < self.expires + leeway and (self.not_before is None or now >= self.not_before - leeway)


_CACHED_TOKENS = 4096


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Verifier:
    """Verifies bearer tokens for one issuer and audience against the keys of one JWKS file.

    A token already verified is remembered (at most 4,096 of them): the keys do not change while
    the process runs, so only the token's times are checked again on its next use — a caller
    sending one token for many requests pays for one signature check."""

    def __init__(self, jwks: Path, *, issuer: str, audience: str, service_identity: str,
                 roles_claim: str = "roles", role_map: dict[str, str] | None = None,
                 leeway_seconds: int = 30) -> None:
        if not 0 <= leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_SECONDS} seconds")
        self.keys = load_jwks(jwks)
        self.issuer = issuer
        self.audience = audience
        self.service_identity = service_identity
        self.roles_claim = roles_claim
        self.role_map = {normalise(k): v for k, v in (role_map or {}).items()}
        self.leeway = leeway_seconds
        self._verified: dict[str, _Verified] = {}

    def principal(self, authorization: str | None) -> Principal:
        """The caller named by an ``Authorization`` header, or a 401 problem saying why not."""
        if not authorization:
            raise _unauthorized("token-missing", "this endpoint needs a bearer token", challenge_error=None)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("token-missing", "the Authorization header must be 'Bearer TOKEN'",
                                challenge_error="invalid_request")
        token = token.strip()
        cached = self._verified.get(token)
        if cached is not None and cached.still_valid(time.time(), self.leeway):
            return cached.principal
        claims = self._claims(token)
        try:
            actor = Actor.of(str(claims["sub"]), "token", service=self.service_identity)
        except NameProblem as error:
            raise _unauthorized("token-subject", f"the token's subject is not a name: {error}") from None
        principal = Principal(actor, self._roles(claims.get(self.roles_claim)))
        if len(self._verified) >= _CACHED_TOKENS:
            self._verified.clear()
        self._verified[token] = _Verified(principal, float(claims["exp"]), _number(claims.get("nbf")))
        return principal

    def _key(self, token: str) -> PyJWK:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthorized("token-malformed", "the bearer token is not a JWT") from None
        kid = header.get("kid")
        if kid is None:
            if len(self.keys) == 1:
                return next(iter(self.keys.values()))
            raise _unauthorized("token-key-unknown", "the token names no key (kid) and the JWKS holds several")
        key = self.keys.get(str(kid))
        if key is None:
            raise _unauthorized("token-key-unknown", f"the token's key {str(kid)!r} is not in the JWKS")
        return key

    def _claims(self, token: str) -> dict[str, Any]:
        key = self._key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key.key, algorithms=[key.algorithm_name], audience=self.audience,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token-expired", "the bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("token-not-yet-valid", "the bearer token is not valid yet (nbf/iat)") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("token-audience", f"the bearer token is not for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("token-issuer", f"the bearer token is not issued by {self.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("token-signature", "the bearer token's signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise _unauthorized("token-algorithm", f"the token must be signed with {key.algorithm_name}, "
                                "the algorithm of its key") from None
        except jwt.MissingRequiredClaimError as error:
            raise _unauthorized("token-claim-missing", f"the bearer token has no '{error.claim}' claim") from None
        except jwt.InvalidTokenError as error:
            raise _unauthorized("token-invalid", f"the bearer token is not acceptable: {error}") from None
        return claims

    def _roles(self, claim: Any) -> frozenset[str]:
        if isinstance(claim, str):
            values = claim.split()
        elif isinstance(claim, list):
            values = [item for item in claim if isinstance(item, str)]
        else:
            values = []
        roles: set[str] = set()
        for value in values:
            try:
                name = normalise(value)
            except NameProblem:
                continue
            role = self.role_map.get(name, name)
            if role in ROLES:
                roles.add(role)
        return frozenset(roles)


def load_jwks(path: Path) -> dict[str, PyJWK]:
    """The signing keys of a JWKS file by key id; refused if it holds a symmetric or unusable key."""
    where = Location(file=str(path))
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as error:
        raise FileAccessError(Diagnostic("jwks-unreadable", f"cannot read {path}: {error.strerror}", where)) from None
    except ValueError as error:
        raise FileAccessError(Diagnostic("jwks-invalid", f"{path} is not JSON: {error}", where)) from None
    raw = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise FileAccessError(Diagnostic("jwks-invalid", f"{path} holds no 'keys' array", where))
    for item in raw:
        if not isinstance(item, dict) or item.get("kty") == "oct":
            raise FileAccessError(Diagnostic("jwks-symmetric-key", f"{path} holds a symmetric or malformed key",
                                             where, "a JWKS for fairalloc serve holds public keys only"))
    try:
        keys = PyJWKSet.from_dict(data).keys
    except jwt.PyJWKSetError as error:
        raise FileAccessError(Diagnostic("jwks-invalid", f"{path}: {error}", where)) from None
    if len(keys) != len(raw):
        raise FileAccessError(Diagnostic("jwks-invalid", f"{path} holds a key PyJWT cannot use", where))
    found: dict[str, PyJWK] = {}
    for index, key in enumerate(keys):
        if key.algorithm_name not in ASYMMETRIC or key.public_key_use not in (None, "sig"):
            raise FileAccessError(Diagnostic("jwks-key-unusable", f"key {index} of {path} is not an "
                                             "asymmetric signing key", where))
        found[key.key_id or f"#{index}"] = key
    return found


def _unauthorized(code: str, message: str, challenge_error: str | None = "invalid_token") -> Problem:
    challenge = f'Bearer realm="{REALM}"'
    if challenge_error is not None:
        description = message.replace('"', "'")  # a quoted-string of the header may not hold '"'
        challenge += f', error="{challenge_error}", error_description="{description}"'
    return problem(401, code, message, exit_code=ExitCode.REFUSED, headers={"WWW-Authenticate": challenge})


def forbidden(principal: Principal, step: str, allowed: frozenset[str]) -> Problem:
    """A 403 problem: the caller is authenticated but its token grants no role this step needs."""
    return problem(403, "role-forbidden",
                   f"{principal.actor.name} may not {step}: it needs a token with one of the roles "
                   f"{', '.join(sorted(allowed))}", exit_code=ExitCode.REFUSED)
