"""A report (agent_ui/reports.py ``report()``) as XLSX (openpyxl) and PDF (reportlab, STSong-Light).

Both show the same tables as the page, this period beside the previous one.
"""

from __future__ import annotations

import io
from typing import Any


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.1f}{unit}"
    return f"{v}{unit}"


def sections(data: dict[str, Any]) -> list[tuple[str, list[list[Any]]]]:
    """(title, rows with a header row) for every table of the report."""
    c = data["calls"]
    t = data["tickets"]
    head = ["指标", data["period"]["label"], data["previous"]["label"]]

    def side_by_side(part: str, rows: tuple[tuple[str, str, str], ...]) -> list[list[Any]]:
        now, before = data[part], data[f"{part}_previous"]
        return [[label, _fmt(now[k], unit), _fmt(before[k], unit)] for label, k, unit in rows]

    summary = [head, *side_by_side("calls", (
        ("呼入", "offered", ""), ("接听", "answered", ""), ("放弃", "abandoned", ""),
        ("15 秒接通率", "pct_within_rule", " %"), ("接通率", "pct_completion", " %"),
        ("放弃率", "pct_abandoned", " %"), ("平均等待", "avg_wait_s", " s"), ("平均通话", "avg_talk_s", " s"),
        ("满意率（IVR）", "pct_satisfied", " %"))), *side_by_side("tickets", (
            ("工单", "tickets", ""), ("按时办结率", "pct_on_time", " %"), ("回访满意率", "pct_satisfied", " %"))),
        *side_by_side("intake", (("网络来件", "received", ""), ("网络来件 3 分钟响应率", "pct_on_time", " %"),
                                 ("网络来件超时", "late", "")))]
    hours = [["时段", "呼入"]] + [[f"{h:02d}:00", n] for h, n in enumerate(c["by_hour"])]
    ops = [["话务员", "接听", "通话时长 s", "平均通话 s", "示忙 s", "话后处理 s", "15 秒接通率", "评价数", "满意率",
            "质检得分"]] + [
        [o["operator"], o["calls"], o["talk_s"], _fmt(o["avg_talk_s"]), o["busy_s"], o["wrap_up_s"],
         _fmt(o["pct_within_rule"], " %"), o["surveys"], _fmt(o["pct_satisfied"], " %"), _fmt(o["qa_score"])]
        for o in c["per_operator"]]
    out = [("话务总览", summary), ("分时段呼入", hours), ("话务员", ops)]
    for title, key in (("工单分类", "by_category"), ("承办单位", "by_department"), ("区县", "by_district"),
                       ("办理方式", "by_mode")):
        out.append((title, [["名称", "数量"]] + [[r["name"], r["count"]] for r in t[key]]))
    depts = [["承办单位", "组织领导", "制度建设", "办理成效", "总分", "扣分项", "加分项"]] + [
        [d["department"], d["leadership"], d["rules"], d["results"], d["score"],
         "；".join(f"{x['item']}×{x['count']} {x['points']}" for x in d["deductions"]),
         "；".join(f"{x['item']}×{x['count']} +{x['points']}" for x in d["bonuses"])] for d in data["departments"]]
    out.append(("部门考核", depts))
    hot = [["关键词", "本期", "上期", "变化"]] + [[r["word"], r["count"], r["previous"], r["change"]]
                                             for r in data["hotspots"]["rising"]]
    out.append(("上升热点", hot))
    return out


def to_xlsx(data: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sections(data):
        ws = wb.create_sheet(title[:31])
        for row in rows:
            ws.append(row)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for col in ws.columns:
            ws.column_dimensions[col[0].column_letter].width = max(10, min(60, max(
                len(str(c.value or "")) * 2 for c in col)))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_pdf(data: dict[str, Any]) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"  # reportlab's built-in CJK font: nothing to install
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    h1 = ParagraphStyle("h1", fontName=font, fontSize=16, leading=22)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=12, leading=18, spaceBefore=8)
    cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)
    story: list[Any] = [Paragraph(f"统计报表 {data['period']['label']}（对比 {data['previous']['label']}）", h1),
                        Spacer(0, 6)]
    for title, rows in sections(data):
        if len(rows) < 2:
            continue
        story.append(Paragraph(title, h2))
        table = Table([[Paragraph(str(v), cell) for v in row] for row in rows], repeatRows=1)
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5"))]))
        story.append(table)
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, title="统计报表").build(story)
    return buf.getvalue()
