"""FIX 4.4 messages built with simplefix (a maintained FIX library), and the worked example.

``python -m tests.fix.messages`` rewrites ``examples/fix/``; ``test_examples`` checks the files
are what this module builds, so the examples and the tests cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import simplefix

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "fix"

Pairs = Sequence[tuple[int, str]]

ACCOUNTS = (("CLIENT-A", "25000"), ("CLIENT-B", "10000"), ("CLIENT-C", "5000"), ("PROPRIETARY", "10000"))
"""The worked example's statement: the accounts and intended quantities of
examples/us-equity-pro-rata.trade.json."""


def build(msg_type: str, body: Pairs, *, seq: int = 1, sending_time: str = "20260302-14:30:00",
          sender: str = "ALPHA-OMS", target: str = "BROKER", sub_id: str | None = None) -> bytes:
    """One message, framed by simplefix (BodyLength and CheckSum computed by the library)."""
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.4", header=True)
    message.append_pair(35, msg_type, header=True)
    message.append_pair(49, sender, header=True)
    message.append_pair(56, target, header=True)
    if sub_id is not None:
        message.append_pair(50, sub_id, header=True)  # SenderSubID
    message.append_pair(34, str(seq), header=True)
    message.append_pair(52, sending_time, header=True)
    for tag, value in body:
        message.append_pair(tag, value)
    encoded: bytes = message.encode()
    return encoded


def new_order(cl_ord_id: str = "XYZ-BLOCK-1", accounts: Sequence[tuple[str, str]] = ACCOUNTS, *,
              quantity: str | None = None, symbol: str = "XYZ", transact_time: str = "20260302-14:30:00",
              seq: int = 1, extra: Pairs = ()) -> bytes:
    """A 35=D with its pre-trade allocation in NoAllocs (OrderQty: the intended total by default)."""
    total = quantity or str(sum(int(q) for _, q in accounts))
    body: list[tuple[int, str]] = [(11, cl_ord_id), (75, "20260302"), (78, str(len(accounts)))]
    for account, intended in accounts:
        body += [(79, account), (80, intended)]
    body += [(21, "1"), (55, symbol), (167, "CS"), (54, "1"), (60, transact_time), (38, total), (40, "1"),
             *extra]
    return build("D", body, seq=seq, sending_time=transact_time, sub_id="pm.alpha")


def execution(exec_id: str, exec_type: str, *, cl_ord_id: str = "XYZ-BLOCK-1", last_qty: str = "0",
              last_px: str = "0", cum_qty: str = "0", avg_px: str = "0", leaves_qty: str = "0",
              transact_time: str = "20260302-14:31:05", ref: str | None = None, seq: int = 1,
              symbol: str = "XYZ") -> bytes:
    """A 35=8: a trade (150=F), a correction (G) or a bust (H) of ``ref``, or a status report."""
    body: list[tuple[int, str]] = [(37, "BRK-" + cl_ord_id), (11, cl_ord_id), (17, exec_id)]
    if ref is not None:
        body.append((19, ref))
    status = "2" if leaves_qty == "0" and cum_qty != "0" else ("1" if cum_qty != "0" else "0")
    body += [(150, exec_type), (39, status), (55, symbol), (54, "1"), (38, "50000")]
    if exec_type in ("F", "G"):
        body += [(32, last_qty), (31, last_px), (30, "XNYS")]
    body += [(151, leaves_qty), (14, cum_qty), (6, avg_px), (60, transact_time)]
    return build("8", body, seq=seq, sender="BROKER", target="ALPHA-OMS", sending_time=transact_time)


def worked_example() -> list[bytes]:
    """The source document's example: 50,000 intended, 18,000 at 99.95 and 12,000 at 100.075."""
    return [
        new_order(),
        execution("EX-0", "0", leaves_qty="50000", transact_time="20260302-14:30:01", seq=1),
        execution("F-1", "F", last_qty="18000", last_px="99.95", cum_qty="18000", avg_px="99.95",
                  leaves_qty="32000", transact_time="20260302-14:31:05", seq=2),
        execution("F-2", "F", last_qty="12000", last_px="100.075", cum_qty="30000", avg_px="100",
                  leaves_qty="20000", transact_time="20260302-14:40:44", seq=3),
    ]


def bust_of_second_fill() -> bytes:
    return execution("F-2-BUST", "H", ref="F-2", cum_qty="18000", avg_px="99.95", leaves_qty="32000",
                     transact_time="20260302-15:10:00", seq=4)


def with_bad_checksum(message: bytes) -> bytes:
    """``message`` with its CheckSum one off (the body left as it is)."""
    head, _, digits = message[:-1].rpartition(b"\x0110=")
    wrong = f"{(int(digits) + 1) % 256:03d}".encode()
    return head + b"\x0110=" + wrong + b"\x01"


def stamp(moment: dt.datetime) -> str:
    """A UTCTimestamp with milliseconds."""
    return moment.strftime("%Y%m%d-%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def day(order: str = "XYZ-BLOCK-1", accounts: Sequence[tuple[str, str]] = ACCOUNTS, *,
        leaves_qty: str = "20000") -> list[bytes]:
    """The worked example, happening now (the ledger's clock must not find intent after
    execution): the 35=D and its two trades, the second leaving ``leaves_qty`` open."""
    now = dt.datetime.now(dt.timezone.utc)
    d = now.date().strftime("%Y%m%d")
    order_msg = new_order(order, accounts, transact_time=stamp(now))
    order_msg = order_msg if d == "20260302" else retrade(order_msg, d)
    return [
        order_msg,
        execution(f"{order}-F-1", "F", cl_ord_id=order, last_qty="18000", last_px="99.95", cum_qty="18000",
                  avg_px="99.95", leaves_qty="32000", transact_time=stamp(now + dt.timedelta(seconds=1)), seq=2),
        execution(f"{order}-F-2", "F", cl_ord_id=order, last_qty="12000", last_px="100.075", cum_qty="30000",
                  avg_px="100", leaves_qty=leaves_qty, transact_time=stamp(now + dt.timedelta(seconds=2)), seq=3),
    ]


def retrade(message: bytes, trade_date: str) -> bytes:
    """A 35=D with another TradeDate (rebuilt by simplefix)."""
    parser = simplefix.FixParser()
    parser.append_buffer(message)
    parsed = parser.get_message()
    assert parsed is not None
    pairs = [(int(t), v.decode()) for t, v in parsed.pairs if int(t) not in (8, 9, 10)]
    header = dict(pairs[:6])
    body = [(t, trade_date if t == 75 else v) for t, v in pairs[6:]]
    return build("D", body, seq=int(header[34]), sending_time=header[52], sub_id=header[50])


def lines(messages: Sequence[bytes]) -> bytes:
    return b"".join(message + b"\n" for message in messages)


EXAMPLE_FILES = {
    "us-equity-pro-rata.fix": lambda: lines(worked_example()),
    "us-equity-pro-rata-bust.fix": lambda: lines([*worked_example(), bust_of_second_fill()]),
    "bad-checksum.fix": lambda: lines([worked_example()[0], with_bad_checksum(worked_example()[2])]),
}


if __name__ == "__main__":
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for name, make in EXAMPLE_FILES.items():
        (EXAMPLES / name).write_bytes(make())
