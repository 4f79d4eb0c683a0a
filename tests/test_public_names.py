"""Every public name of ``fairalloc`` stays what it is, whatever submodules have been imported.

Importing a submodule binds it as an attribute of its package; a submodule named like a public
function would replace that function (``fairalloc.allocate(p, t)`` once raised "'module' object
is not callable" after ``Policy.rotation_group()`` had imported the old ``fairalloc/allocate.py``).
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import types

import pytest

import fairalloc

OPTIONAL = ("psycopg", "polars", "jinja2")  # extras: a submodule needing one may be absent


def every_submodule() -> list[str]:
    """Every module of the package but scripts: ``__main__`` (runs the CLI when imported) and the
    ledger's migration scripts (run by alembic, with alembic's context)."""
    return sorted(info.name for info in pkgutil.walk_packages(fairalloc.__path__, "fairalloc.")
                  if not info.name.endswith(".__main__") and ".migrations." not in info.name)


def test_no_public_name_is_a_submodule_name() -> None:
    submodules = {name.split(".")[1] for name in every_submodule()}
    assert not submodules & set(fairalloc.__all__)


def test_public_names_survive_importing_every_submodule() -> None:
    for name in every_submodule():
        try:
            importlib.import_module(name)
        except ImportError as error:  # an extra that is not installed
            if not any(extra in str(error) for extra in OPTIONAL):
                raise
    for name in fairalloc.__all__:
        value = getattr(fairalloc, name)
        assert not isinstance(value, types.ModuleType), f"fairalloc.{name} is a module"
        if name[0].isupper():
            assert inspect.isclass(value), f"fairalloc.{name} should be a class"
            assert value.__name__ == name
        else:
            assert inspect.isfunction(value), f"fairalloc.{name} should be a function"
            assert value.__name__ == name


@pytest.mark.parametrize("name", fairalloc.__all__)
def test_each_public_name_is_documented(name: str) -> None:
    value = getattr(fairalloc, name)
    assert inspect.getdoc(value), f"fairalloc.{name} has no docstring"
    if isinstance(value, type) and issubclass(value, enum.Enum):
        assert list(value)


def test_allocate_is_callable_after_the_plan_asks_for_a_rotation_group() -> None:
    from .conftest import EXAMPLES, POLICIES

    policy = fairalloc.load_policy(POLICIES / "fixed-income-rotation.yaml")
    trade = fairalloc.load_trade(EXAMPLES / "fixed-income-rotation.trade.json")
    assert policy.rotation_group(trade) == "fixed-income-rotation/core"
    assert fairalloc.allocate(policy, trade).rotation_after is not None
