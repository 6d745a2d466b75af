"""The centres' calendar: Beijing time bounds every working day, deadline and log filter."""

from __future__ import annotations

from zoneinfo import ZoneInfo

CENTRE_TZ = ZoneInfo("Asia/Shanghai")
