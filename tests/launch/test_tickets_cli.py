"""``hotline tickets import``: a centre's finished tickets from its previous system, as an admin runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.db import make_engine
from tests.launch.test_accounts_cli import hotline

pytestmark = pytest.mark.timeout(180)


def _row(i: int, **over) -> str:
    row = {"number": f"OLD{i:05d}", "status": "closed", "created_at": "2025-06-01T08:30:00+08:00",
           "category": "投诉举报", "title": f"夜间施工噪音第{i}起", "caller_number": "13853099999",
           "matter_course": "工地夜里施工", "lead_department": "菏泽市城市管理局"}
    row.update(over)
    return json.dumps(row, ensure_ascii=False)


def test_check_first_then_import_then_rerun(tmp_path: Path) -> None:
    assert hotline(tmp_path, "seed", "--tickets", "0").returncode == 0  # the directory the rows name
    good = [_row(i) for i in range(1, 6)]
    data = tmp_path / "old.jsonl"
    data.write_text("\n".join([*good, _row(6, lead_department="火星局"), "oops"]) + "\n", encoding="utf-8")

    checked = hotline(tmp_path, "tickets", "import", str(data), "--dry-run")
    assert checked.returncode == 1
    assert "第 6 行" in checked.stdout and "火星局" in checked.stdout and "第 7 行" in checked.stdout
    assert "可导入 5 张" in checked.stdout

    engine = make_engine(f"sqlite:///{tmp_path / 'hotline.db'}")
    imported_so_far = "SELECT count(*) FROM ticket WHERE source = 'import'"
    with engine.connect() as c:
        assert c.execute(sa.text(imported_so_far)).scalar() == 0  # the dry run wrote nothing

    data.write_text("\n".join(good) + "\n", encoding="utf-8")
    done = hotline(tmp_path, "tickets", "import", str(data))
    assert done.returncode == 0, done.stderr
    assert "已导入 5 张" in done.stdout
    again = hotline(tmp_path, "tickets", "import", str(data))
    assert again.returncode == 0 and "已导入 0 张，已存在 5 张" in again.stdout
    with engine.connect() as c:
        assert c.execute(sa.text(imported_so_far)).scalar() == 5
        audit = c.execute(sa.text("SELECT detail FROM audit_event WHERE action = 'ticket_import' ORDER BY id")).all()
    assert [a[0].split("，")[0] for a in audit] == ["导入 5", "导入 0"]
    engine.dispose()
    assert hotline(tmp_path, "tickets", "import", str(tmp_path / "missing.jsonl")).returncode == 2
