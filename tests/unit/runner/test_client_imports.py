"""The runner's HTTP requests do not search ``sys.path`` for modules that are not installed."""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType

import pytest

from conveyor.runner import client

pytestmark = pytest.mark.unit


class Searches(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        self.names.append(name)
        return None


def test_httpcore_asks_for_its_async_library_without_an_import_search() -> None:
    from httpcore._synchronization import current_async_library

    finder = Searches()
    sys.meta_path.insert(0, finder)
    try:

        async def ask() -> list[str]:
            return [current_async_library() for _ in range(3)]

        assert asyncio.run(ask()) == ["asyncio"] * 3
    finally:
        sys.meta_path.remove(finder)
    assert finder.names == []


def test_only_missing_modules_are_marked_missing() -> None:
    client.remember_missing_modules(("json", "conveyor_no_such_module_xyz"))
    try:
        assert sys.modules["json"] is not None
        assert sys.modules["conveyor_no_such_module_xyz"] is None
        with pytest.raises(ImportError):
            __import__("conveyor_no_such_module_xyz")
    finally:
        del sys.modules["conveyor_no_such_module_xyz"]
