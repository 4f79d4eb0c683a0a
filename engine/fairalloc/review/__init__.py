"""Review tooling for policy pull requests: format, test, cover, diff and measure the impact.

One module per capability, each a library over :mod:`engine`; the ``fmt``, ``test`` and ``diff``
subcommands in :mod:`fairalloc.cli` are thin shells over them:

* :mod:`.fmt`        — canonical layout of policy YAML (comments and key order kept);
* :mod:`.policytest` — policy test files, their runner and the JUnit XML writer;
* :mod:`.coverage`   — which rules and branches of a policy the tests exercised;
* :mod:`.sources`    — where a policy version comes from: a file or ``REV:path`` in git;
* :mod:`.diff`       — a semantic diff of two policy versions in a reviewer's words;
* :mod:`.impact`     — replay historical trades under both versions and report what changes.
"""
