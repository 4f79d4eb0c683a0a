"""FIX 4.4 adapter: pre-allocated orders and executions in, AllocationInstructions out.

The stages, one module each: :mod:`~fairalloc.fix.codec` (framing, BodyLength, CheckSum,
repeating groups, located errors) → :mod:`~fairalloc.fix.mapping` (35=D and 35=8 to the trade
contract with the fill lifecycle; an allocation to 35=J) → the engine (:func:`fairalloc.allocate`)
or the ledger's recorded workflow (:mod:`~fairalloc.fix.record`). ``docs/fix.md`` has the mapping
field by field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fairalloc.errors import Diagnostic, InputError, Location
from fairalloc.fix.codec import Message, read_messages
from fairalloc.fix.mapping import Book, Instruction, allocation_instruction
from fairalloc.plan import Policy

__all__ = ["Book", "Instruction", "Message", "allocate_messages", "load_accounts", "load_identities",
           "read_messages"]


def load_accounts(path: str) -> dict[str, dict[str, Any]]:
    """An accounts file: a JSON object of account id to that account's attributes (an object)."""
    from fairalloc.load import read_text
    from fairalloc.trade import parse_json

    data = parse_json(read_text(path), path)
    if not isinstance(data, dict):
        raise InputError(Diagnostic("fix-accounts-type", "an accounts file is a JSON object of account id to "
                                    "attributes", Location(path, pointer="")))
    problems = [Diagnostic("fix-accounts-type", f"the attributes of account {account!r} must be an object",
                           Location(path, pointer="/" + account.replace("~", "~0").replace("/", "~1")))
                for account, attributes in data.items() if not isinstance(attributes, dict)]
    if problems:
        raise InputError(problems)
    return data


def load_identities(path: str) -> dict[str, str]:
    """An identities file of ``fix serve``: a JSON object of counterparty CompID to the ledger
    user the acceptor acts for in that counterparty's sessions (a name, normalised here)."""
    from fairalloc.load import read_text
    from fairalloc.names import NameProblem, normalise
    from fairalloc.trade import parse_json

    data = parse_json(read_text(path), path)
    if not isinstance(data, dict):
        raise InputError(Diagnostic("fix-identities-type", "an identities file is a JSON object of counterparty "
                                    "CompID to ledger user name", Location(path, pointer="")))
    identities: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for comp_id, user in data.items():
        pointer = "/" + comp_id.replace("~", "~0").replace("/", "~1")
        try:
            if not isinstance(user, str):
                raise NameProblem("fix-identities-type", "not a string")
            identities[comp_id] = normalise(user)
        except NameProblem as problem:
            problems.append(Diagnostic("fix-identities-type", f"the user of counterparty {comp_id!r} must be a "
                                       f"ledger user name: {problem}", Location(path, pointer=pointer)))
    if problems:
        raise InputError(problems)
    return identities


def allocate_messages(policy: Policy, messages: list[Message], *, file: str,
                      accounts: dict[str, dict[str, Any]] | None = None,
                      sending_time: dt.datetime | None = None) -> list[Instruction]:
    """One 35=J per order of ``messages`` that has live executions, in the order of the 35=Ds.

    A pure function of its inputs. Raises on the first order the engine refuses, so a caller
    writes either every instruction or none.
    """
    from fairalloc import allocate, load_trade

    book = Book(accounts)
    book.read(messages)
    instructions: list[Instruction] = []
    for order in book.orders.values():
        if not order.live():
            continue
        where = f"{file}:{order.message.line}"
        trade = load_trade(book.trade_document(order.cl_ord_id), file=where)
        document = allocate(policy, trade, file=where).document()
        instructions.append(allocation_instruction(order, document, seq=len(instructions) + 1,
                                                   sending_time=sending_time))
    return instructions
