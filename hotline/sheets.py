"""A table out as a spreadsheet: CSV that Excel opens in UTF-8 (with a BOM), or XLSX; text that a
spreadsheet would run as a formula is neutralised. Every export (tickets, audit logs) uses it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from hotline.days import CENTRE_TZ

FORMATS = ("csv", "xlsx")
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


# control characters a spreadsheet cannot hold (XLSX refuses them; anyone can put one in a log by
# typing it as a user name at the login): dropped from every cell
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in exported text (=, +, -, @ at the start) and drop the
    control characters a sheet cannot hold.

    >>> cell("=HYPERLINK(1)"), cell("@sum"), cell("正常"), cell(3), cell("x\x01y")
    ("'=HYPERLINK(1)", "'@sum", '正常', 3, 'xy')
    """
    if not isinstance(value, str):
        return value
    value = _CONTROL.sub("", value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def table_bytes(fmt: str, sheet: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"导出格式须为 {' 或 '.join(FORMATS)}")
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows([cell(v) for v in row] for row in rows)
        return ("\ufeff" + buf.getvalue()).encode("utf-8")
    from openpyxl import Workbook  # only an XLSX export pays for it

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet[:31])
    ws.append(list(header))
    for row in rows:
        ws.append([cell(v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def local_time(at: datetime | str) -> str:
    """A moment as the centre reads it in a sheet: Beijing time to the second."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(CENTRE_TZ).strftime("%Y-%m-%d %H:%M:%S")


def attachment_headers(name: str) -> dict[str, str]:
    """Download headers for an export named ``name`` (Chinese names survive, RFC 5987); never cached."""
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"}
