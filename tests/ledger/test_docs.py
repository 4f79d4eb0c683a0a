"""Every error code the ledger can raise is documented in docs/ledger.md."""

from __future__ import annotations

import re

from .helpers import ROOT

_RAISERS = re.compile(r'(?:_refused|_conflict|Diagnostic)\(\s*"([a-z][a-z0-9-]+)"')


def test_every_ledger_error_code_is_documented() -> None:
    sources = [*sorted((ROOT / "engine" / "fairalloc" / "ledger").glob("*.py")),
               *(ROOT / "engine" / "fairalloc" / "cli" / f"{name}.py" for name in ("ledger", "_checkpoint", "order", "policy", "replay"))]
    codes = {code for path in sources for code in _RAISERS.findall(path.read_text())}
    codes |= {"ledger-append-only", "ledger-database-error"}  # chosen from the database's message
    codes -= {"demo-step-failed"}  # the demo's own failure, not a user-facing command's
    guide = (ROOT / "docs" / "ledger.md").read_text()
    missing = sorted(code for code in codes if f"`{code}`" not in guide)
    assert not missing, f"undocumented codes: {missing}"
    assert len(codes) > 40
