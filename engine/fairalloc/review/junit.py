"""JUnit XML for CI systems: one ``<testsuite>`` per policy test file, one ``<testcase>`` per case.

The layout is the common JUnit schema that Jenkins, GitLab, GitHub Actions reporters and Azure
Pipelines read: ``<testsuites>`` → ``<testsuite name tests failures errors skipped time>`` →
``<properties>`` then ``<testcase name classname time>`` with ``<failure>`` or ``<error>``. A file
that could not be loaded (a bad test file or an invalid policy) becomes a suite with one errored
case, so CI shows it rather than silently counting fewer tests. The suite's properties name the
policy version and carry its rule coverage (``coverage:<target>:<branch>`` = number of cases).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from fairalloc.review.coverage import PolicyCoverage
from fairalloc.review.policytest import SuiteResult


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _suite(result: SuiteResult, coverage: PolicyCoverage | None) -> ET.Element:
    cases = len(result.results) or (1 if result.errors else 0)
    errors = result.count("error") + (1 if result.errors else 0)
    suite = ET.Element("testsuite", {
        "name": result.path,
        "tests": str(cases),
        "failures": str(result.count("failed")),
        "errors": str(errors),
        "skipped": "0",
        "time": _seconds(result.seconds),
    })
    properties = ET.SubElement(suite, "properties")
    if result.policy is not None:
        ET.SubElement(properties, "property", {"name": "policy", "value": result.policy.ref})
        ET.SubElement(properties, "property", {"name": "policy.digest", "value": result.policy.digest})
        ET.SubElement(properties, "property", {"name": "policy.file", "value": result.policy.file})
    if coverage is not None:
        for branch in coverage.branches:
            ET.SubElement(properties, "property",
                          {"name": f"coverage:{branch.target}:{branch.branch}", "value": str(branch.cases)})
        ET.SubElement(properties, "property",
                      {"name": "coverage:untested-rules", "value": ",".join(coverage.untested_rules)})
    classname = result.policy.id if result.policy is not None else result.path
    if result.errors:
        case = ET.SubElement(suite, "testcase", {"name": "(load test file and policy)", "classname": classname,
                                                 "time": _seconds(0.0)})
        error = ET.SubElement(case, "error", {"message": result.errors[0].message, "type": result.errors[0].code})
        error.text = "\n".join(d.render() for d in result.errors)
    for outcome in result.results:
        case = ET.SubElement(suite, "testcase", {"name": outcome.case.name, "classname": classname,
                                                 "time": _seconds(outcome.seconds)})
        if outcome.status in ("failed", "error"):
            tag = "failure" if outcome.status == "failed" else "error"
            element = ET.SubElement(case, tag, {"message": outcome.messages[0] if outcome.messages else outcome.status,
                                                "type": f"policy-test-{outcome.status}"})
            element.text = f"{outcome.case.location}\n" + "\n".join(outcome.messages)
    return suite


def junit_xml(results: Sequence[SuiteResult], coverage: Mapping[str, PolicyCoverage]) -> str:
    """The JUnit XML document for ``results``; ``coverage`` is keyed by policy file."""
    root = ET.Element("testsuites", {"name": "fairalloc policy tests"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    elapsed = 0.0
    for result in results:
        suite = _suite(result, coverage.get(result.policy.file) if result.policy is not None else None)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        elapsed += result.seconds
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(elapsed))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
