"""The downloadable import template (导入模板): an .xlsx with the import's headers (Chinese with the
engine's name beside it, as the import reads them), one example row in the office's own words, and
a second sheet listing the accepted kinds, stages and deadline forms. Filled in and uploaded to
/import (or `casectl import`), it is read back by admin.service.rows_from_upload."""

from __future__ import annotations

import io

from domain.enums import CaseKind
from domain.office_terms import KIND_EN, KIND_TERMS, STAGE_TERMS

# (header as written: Chinese, then the engine's column name; example cell)
TEMPLATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("案件编号 case_no", "FB-2027-001"),
    ("类型 kind", "反馈问题整改任务"),
    ("阶段 stage", "建档立案"),
    ("标题 title", "城区黑臭水体整治不彻底"),
    ("问题 problem", "城区部分黑臭水体整治后出现反弹,雨污分流改造滞后。"),
    ("整改目标 target", "城区黑臭水体消除比例达到100%,长制久清。"),
    ("整改措施 measures", "1.开展城区水体排查,建立问题清单\n2.完成雨污分流改造\n3.建立长效管护机制"),
    ("主体责任单位 responsible_units", "某县人民政府"),
    ("牵头督导单位 lead_supervising_units", "市住房城乡建设局\n市生态环境局"),
    ("配合督导单位 assisting_units", "市水利局"),
    ("整改时限 deadline", "2027年6月30日前完成,长期坚持"),
    ("督察轮次 inspection_round", "第三轮中央生态环境保护督察"),
    ("辖区 jurisdiction", "某县"),
    ("来源 source", "中央生态环境保护督察报告反馈问题"),
    ("牵头督导领导 lead_leader", "分管副市长"),
    ("督办梯度 ladder_profile", "canonical"),
    ("举报内容 complaint", ""),
)
TEMPLATE_FILENAME = "import-template.xlsx"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEADLINE_FORMS = (
    ("2027年6月30日 / 2027-06-30", "a date (日期)"),
    ("2027年9月", "end of that month (月底)"),
    ("2027年底", "end of that year (年底)"),
    ("立行立改 / 即知即改 / 立即整改", "rectify immediately (立即整改)"),
    ("持续推进", "ongoing (持续推进)"),
    ("…,长期坚持 / 防止反弹", "then maintain long-term (长期坚持)"),
)


def template_xlsx() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "导入 Import"
    ws.append([h for h, _ in TEMPLATE_COLUMNS])
    ws.append([v for _, v in TEMPLATE_COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for cell in ws[2]:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for i, (h, _) in enumerate(TEMPLATE_COLUMNS, start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = max(14, min(40, len(h) + 6))
    ws.freeze_panes = "A2"

    notes = wb.create_sheet("说明 Notes")
    notes.append(["说明 Notes: 第一张表首行为表头,每行一件;单位、措施每行一个(或用分号分隔)。"
                  "The first sheet: a header row, then one case per row; units and measures one per line "
                  "(or ';'-separated). 只读取第一张表 Only the first sheet is read."])
    notes.append([])
    notes.append(["类型 kind", "English", "可用写法 accepted words"])
    for k in CaseKind:
        notes.append([k.value, KIND_EN[k], "、".join(KIND_TERMS[k])])
    notes.append([])
    notes.append(["阶段 stage", "", "导入只能建档立案 an import files new cases at 建档立案 REGISTERED: "
                  + "、".join(STAGE_TERMS[next(iter(STAGE_TERMS))])])
    notes.append([])
    notes.append(["整改时限 deadline", "English", ""])
    for form, en in DEADLINE_FORMS:
        notes.append([form, en, ""])
    for row in (3, 3 + len(CaseKind) + 2, 3 + len(CaseKind) + 4):
        for cell in notes[row]:
            cell.font = Font(bold=True)
    notes.column_dimensions["A"].width = 34
    notes.column_dimensions["B"].width = 30
    notes.column_dimensions["C"].width = 80
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
