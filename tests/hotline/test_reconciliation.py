"""The witness's last report on disk (hotline/reconciliation.py)."""

from __future__ import annotations

from pathlib import Path

from hotline import reconciliation
from hotline.reconciliation import Report


def test_a_report_is_written_where_the_var_folder_does_not_exist_yet_and_read_back(tmp_path: Path) -> None:
    var = tmp_path / "new-node" / "var"  # a fresh CTI node: nothing has made its folder yet
    report = Report(at=Report.now(), source="/var/log/asterisk/cel-custom", readable=True, checked=3,
                    missing=["hz1-1796472076.0"])
    reconciliation.write(var, report)
    assert reconciliation.read(var) == report
    assert [p.name for p in var.iterdir()] == [reconciliation.FILE]  # no temporary file left
