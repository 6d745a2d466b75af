"""Looking into recordings the tests made: is there speech in them? (testkit.audio's, shared with
the benchmarks; kept importable here for the tests that use it.)"""

from __future__ import annotations

from testkit.audio import loud_seconds

__all__ = ["loud_seconds"]
