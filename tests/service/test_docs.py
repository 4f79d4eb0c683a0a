"""docs/service.md stays true: every route, error code, metric and the systemd unit's command line."""

from __future__ import annotations

import re
import shlex

from fairalloc.cli import build_parser
from fairalloc.service import ServiceConfig, create_app
from tests.service.conftest import AUDIENCE, ISSUER, ROOT, Keys

GUIDE = (ROOT / "docs" / "service.md").read_text()
SOURCES = [*sorted((ROOT / "engine" / "fairalloc" / "service").glob("*.py")), ROOT / "engine/fairalloc/cli/serve.py"]
_RAISED = re.compile(r'(?:problem\(\d+, |Diagnostic\(|_unauthorized\()\s*"([a-z][a-z0-9-]+)"')


def test_every_route_is_in_the_guide_and_every_route_in_the_guide_is_served(keys: Keys) -> None:
    app = create_app(ServiceConfig(jwks=keys.jwks, issuer=ISSUER, audience=AUDIENCE, service_identity="svc"))
    try:
        served = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
                  for method in operations}
    finally:
        app.state.service.close()
    documented = {(m, p) for m, p in re.findall(r"`(GET|POST|PUT|DELETE) (/[^`?\s]*)", GUIDE)}
    routes = {(m, p) for m, p in served if p.startswith("/v1")}
    assert routes - documented == set(), "routes missing from docs/service.md"
    assert documented - served - {("GET", "/openapi.json")} == set(), \
        "docs/service.md names routes that are not served"
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert f"`GET {path}`" in GUIDE


def test_every_error_code_the_service_raises_is_documented() -> None:
    codes = {code for path in SOURCES for code in _RAISED.findall(path.read_text())}
    codes |= {"not-found", "method-not-allowed", "json-syntax", "json-duplicate-key"}
    missing = sorted(code for code in codes if f"`{code}`" not in GUIDE)
    assert not missing, f"undocumented codes: {missing}"
    assert len(codes) > 40


def test_every_metric_is_documented() -> None:
    source = (ROOT / "engine" / "fairalloc" / "service" / "metrics.py").read_text()
    names = re.findall(r'(?:Counter|Histogram|Gauge)\("([a-z_]+)"', source)
    assert len(names) == 7
    for name in names:
        shown = name + "_total" if f'Counter("{name}"' in source else name
        assert f"`{shown}`" in GUIDE, name


def test_the_systemd_unit_runs_a_valid_serve_command() -> None:
    (line,) = [line for line in GUIDE.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart=").replace("%i", "8081"))
    assert argv[0].endswith("/fairalloc") and argv[1] == "serve"
    args = build_parser(["serve"]).parse_args(argv[1:])
    assert args.port == 8081 and args.ledger.startswith("postgresql://")
    assert args.handler.__module__ == "fairalloc.cli.serve"
