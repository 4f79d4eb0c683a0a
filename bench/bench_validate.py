"""Validation time against policy size, and the time to refuse hostile input.

Policies of 500 to 4,000 rules (the shipped pro-rata policy with ``flag`` rules added) are loaded
and compiled in-process; the table gives CPU and wall seconds and CPU milliseconds per rule, which
stays flat when validation is linear in policy size. Then each hostile input of the issue is
refused through ``fairalloc validate`` / ``allocate`` in a child process, whose CPU time and peak
memory are shown beside its exit status and code.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import harness
from fairalloc.compile import compile_policy
from fairalloc.load import load_yaml

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "us-equity-pro-rata.yaml"
TRADE = ROOT / "examples" / "us-equity-pro-rata.trade.json"
SIZES = (500, 1000, 2000, 4000)


def policy_with_rules(count: int) -> str:
    """The shipped pro-rata policy with ``count`` flag rules in place of its one rule."""
    text = POLICY.read_text(encoding="utf-8")
    head, _, tail = text.partition("rules:\n")
    tail = tail[tail.index("overrides:"):]
    rules = "".join(
        f"  - id: rule-{i}\n    when: 'account.proprietary and fill.ratio < {i % 99 + 1}%'\n"
        f"    action: flag\n    reason: rule {i}\n"
        for i in range(count)
    )
    return head + "rules:\n" + rules + tail


def scaling() -> None:
    print(f"{'rules':>6} {'chars':>9} {'cpu s':>7} {'wall s':>7} {'cpu ms/rule':>12}")
    for count in SIZES:
        text = policy_with_rules(count)
        _, timing = harness.timed(lambda: compile_policy(load_yaml(text, "bench.yaml")))
        print(f"{count:>6} {len(text):>9,} {timing.cpu:>7.2f} {timing.wall:>7.2f} {timing.cpu / count * 1000:>12.3f}")


def hostile(folder: Path) -> dict[str, list[str]]:
    """The issue's hostile inputs, each as the command line that should refuse it."""
    policy = POLICY.read_text(encoding="utf-8")
    trade = TRADE.read_text(encoding="utf-8")
    bomb = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'] + [
        f"lol{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 10)]
    policies = {
        "alias bomb": policy + "\n".join(bomb) + "\n",
        "recursive alias": "a: &a [*a]\n",
        "YAML nested 10^5": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "lot: 1.0e+999999999": policy.replace("lot: 100", "lot: 1.0e+999999999"),
        "lot: 1.0e-999999999": policy.replace("lot: 100", "lot: 1.0e-999999999"),
        "10^6-digit decimal": policy.replace("absolute: 100", "absolute: 1." + "0" * 10**6 + "1"),
        "review: yes": policy.replace("review: true", "review: yes"),
    }
    document = json.loads(trade)
    document["fills"][0]["price"] = "1." + "0" * 10**6 + "1"
    trades = {
        "JSON nested 10^5": "[" * 100_000 + "]" * 100_000,
        "5,000-digit integer": trade.replace('"quantity": 50000', '"quantity": ' + "9" * 5000, 1),
        "10^6-digit fill price": json.dumps(document),
        "weight 1e999999999": trade.replace('"fee_basis": "standard"', '"fee_basis": "standard", "weight": 1e999999999', 1),
    }
    commands: dict[str, list[str]] = {}
    for index, (name, text) in enumerate(policies.items()):
        path = folder / f"p{index}.yaml"
        path.write_text(text, encoding="utf-8")
        commands[name] = ["validate", str(path)]
    for index, (name, text) in enumerate(trades.items()):
        path = folder / f"t{index}.json"
        path.write_text(text, encoding="utf-8")
        commands[name] = ["allocate", "--policy", str(POLICY), "--trade", str(path)]
    return commands


def refusals() -> None:
    print(f"\n{'hostile input':<24} {'status':>6} {'cpu s':>6} {'peak MB':>8}  code")
    with tempfile.TemporaryDirectory() as folder:
        for name, command in hostile(Path(folder)).items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run([sys.executable, "-m", "fairalloc", "--error-format", "json", *command],
                                  capture_output=True, text=True, check=False, timeout=120)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            code = json.loads(done.stderr)["errors"][0]["code"] if done.stderr.startswith("{") else "?"
            peak = after.ru_maxrss / 1024  # the largest child so far
            print(f"{name:<24} {done.returncode:>6} {cpu:>6.2f} {peak:>8.0f}  {code}")


def main() -> None:
    harness.banner()
    scaling()
    refusals()
    harness.closing()


if __name__ == "__main__":
    main()
