"""Who acts, as established by authentication — never by what the caller typed.

Every workflow step of the ledger takes an :class:`Actor`. Its ``name`` comes from the way the
caller was authenticated: the operating-system user running the command (embedded SQLite), the
database role of the connection (PostgreSQL, taken server-side), or the verified subject of a
bearer token (the HTTP service). ``on_behalf_of`` is what a person *said* (``--user``); it is
recorded beside the authenticated name and never used for an authority check.

What each backend can prove (docs/ledger.md says the same to users):

* PostgreSQL — the database authenticated the role, and the INSERT records it as
  ``session_user``: a trader connected as ``tom`` cannot record an event as ``cco.reyes``.
* SQLite — only which operating-system account ran the command. Anyone who can write the file
  can also write it with another program; the chain, ``verify`` and signed checkpoints make such
  a change evident, but the embedded ledger cannot prove which *person* sat at that account.
* Token — the service's identity is proven as above; the subject is what the service vouches
  for, and only a service holding the ``service`` role may vouch.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from typing import Literal

from fairalloc.names import NameProblem, normalise

Source = Literal["os-user", "database-role", "token"]


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated principal: ``name`` normalised (see :mod:`fairalloc.names`), ``source``
    saying how it was established, ``service`` the identity of the process that vouches for a
    token subject (the service's own database role or OS user), and an optional, unverified
    ``on_behalf_of``."""

    name: str
    source: Source
    service: str | None = None
    on_behalf_of: str | None = None

    def __post_init__(self) -> None:
        """Every name already normalised: an actor built directly, bypassing :meth:`of`, cannot
        carry a look-alike into a comparison."""
        for text in (self.name, self.service, self.on_behalf_of):
            if text is not None and normalise(text) != text:
                raise NameProblem("name-not-normal", f"{text!r} is not a normalised name; "
                                  "build actors with Actor.of")

    @staticmethod
    def of(name: str, source: Source, *, service: str | None = None,
           on_behalf_of: str | None = None) -> Actor:
        """An actor with every name normalised; :class:`fairalloc.names.NameProblem` if one is not a name."""
        return Actor(
            normalise(name),
            source,
            normalise(service) if service is not None else None,
            normalise(on_behalf_of) if on_behalf_of is not None else None,
        )


def os_user() -> str:
    """The normalised name of the operating-system user this process runs as (effective uid).

    From the password database, not from ``$USER`` or ``$LOGNAME``, which the caller sets."""
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid-{uid}"  # a uid without a password entry (containers): still the same uid
    return normalise(name)
