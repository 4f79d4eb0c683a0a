"""``fairalloc completion bash|zsh``: print a shell completion script for the whole command.

The script is generated from the argparse tree of every command whose extra is installed
(``shtab``): it is static, so pressing TAB never starts Python, and it follows the options of
this very installation.
"""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script for the fairalloc command. Bash: "
        "eval \"$(fairalloc completion bash)\" in ~/.bashrc; zsh: fairalloc completion zsh > "
        "\"${fpath[1]}/_fairalloc\".",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from fairalloc.cli import build_parser, installed_commands

    print(shtab.complete(build_parser(installed_commands()), shell=args.shell), end="")
    return 0
