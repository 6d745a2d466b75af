"""Debian's chromium as tests and benchmarks launch it (never ``playwright install``)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# without the background-networking flags chromium keeps dialling hosts this machine cannot reach
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
