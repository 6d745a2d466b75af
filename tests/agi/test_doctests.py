"""The doctests of every agi/ module (parsers, number speech, service hours, quoting)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import agi

MODULES = sorted(m.name for m in pkgutil.walk_packages(agi.__path__, "agi."))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


def test_the_parsers_have_doctests() -> None:
    for name in ("agi.protocol", "agi.channel", "agi.flows.common", "agi.flows.hours", "agi.flows.status"):
        assert doctest.testmod(importlib.import_module(name)).attempted > 0, name
