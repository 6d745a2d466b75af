"""Every route of an app, for the tests that go through all of them (authorisation, anonymous access)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route of the app; FastAPI ≥ 0.16x keeps included routers as wrappers."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from flat_routes(inner.routes)
        else:
            yield r
