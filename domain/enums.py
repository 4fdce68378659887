"""Enumerations of the rectification domain, each with its Chinese label.

Values are stable identifiers: they appear in workflow histories, the ledger and
search attributes, so renaming one is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum


class CaseKind(StrEnum):
    """The three kinds of case the engine carries (domain.md §2)."""

    FEEDBACK_PROBLEM = "FEEDBACK_PROBLEM"  # 反馈问题整改任务
    PETITION = "PETITION"  # 信访举报交办件
    WARNING_FILM = "WARNING_FILM"  # 警示片披露问题


class Stage(StrEnum):
    """Where a case stands in its lifecycle (domain.md §4.2, §4.3)."""

    REGISTERED = "REGISTERED"  # 建档立案
    TRANSFERRED = "TRANSFERRED"  # 已交办(待签收)
    INVESTIGATING = "INVESTIGATING"  # 调查核实
    RECTIFYING = "RECTIFYING"  # 整改中
    PRELIM_REVIEW = "PRELIM_REVIEW"  # 初审
    PUBLIC_POSTING = "PUBLIC_POSTING"  # 公示
    CLOSURE_APPLICATION = "CLOSURE_APPLICATION"  # 申请(验收申请)
    VERIFICATION = "VERIFICATION"  # 核查/验收
    FILING = "FILING"  # 备案
    REPLY = "REPLY"  # 办结答复 (petitions)
    DISCLOSURE = "DISCLOSURE"  # 公开 (petitions)
    CLOSED = "CLOSED"  # 销号
    LONG_TERM_MAINTENANCE = "LONG_TERM_MAINTENANCE"  # 长期坚持、防止反弹
    ARCHIVED = "ARCHIVED"  # 归档: look-back window over, workflow finished


# A case counts as done (for programmes, dispatch, statistics, fan-out parents): 销号, 归档, or in
# long-term maintenance (domain.md §4.1 P5, 000:427).
DONE_STAGES: frozenset[Stage] = frozenset({Stage.CLOSED, Stage.LONG_TERM_MAINTENANCE, Stage.ARCHIVED})


class Role(StrEnum):
    """Roles an actor may hold (domain.md §3)."""

    RECTIFICATION_OFFICE = "RECTIFICATION_OFFICE"  # 整改办
    LEAD_SUPERVISOR = "LEAD_SUPERVISOR"  # 牵头督导单位
    ASSIST_SUPERVISOR = "ASSIST_SUPERVISOR"  # 配合督导单位
    RESPONSIBLE_UNIT = "RESPONSIBLE_UNIT"  # 主体责任单位
    DISCIPLINE_COMMISSION = "DISCIPLINE_COMMISSION"  # 纪委监委
    SUPERVISION_OFFICE = "SUPERVISION_OFFICE"  # 市委督查室 / 市政府督查室 (000:427, 431)
    PUBLIC = "PUBLIC"  # 公众
    AUDITOR = "AUDITOR"  # 审计/核查人员 (read only)
    SYSTEM = "SYSTEM"  # the engine itself (timers)


class Action(StrEnum):
    """Every handler action; the lifecycle table says who may take it where."""

    AMEND = "AMEND"  # 补正案件信息
    TRANSFER = "TRANSFER"  # 交办
    ACKNOWLEDGE = "ACKNOWLEDGE"  # 签收
    RECORD_FINDING = "RECORD_FINDING"  # 调查核实结论
    REPORT_PROGRESS = "REPORT_PROGRESS"  # 调度报告
    COMPLETE_MEASURE = "COMPLETE_MEASURE"  # 措施完成
    SUBMIT_COMPLETION = "SUBMIT_COMPLETION"  # 申报整改完成
    PRELIM_PASS = "PRELIM_PASS"  # 初审通过
    PRELIM_REJECT = "PRELIM_REJECT"  # 初审退回
    OBJECT = "OBJECT"  # 公示异议
    UPHOLD_OBJECTION = "UPHOLD_OBJECTION"  # 异议成立
    DISMISS_OBJECTION = "DISMISS_OBJECTION"  # 异议不成立
    APPLY_CLOSURE = "APPLY_CLOSURE"  # 提交销号申请
    VERIFY_PASS = "VERIFY_PASS"  # 核查验收通过
    VERIFY_FAIL = "VERIFY_FAIL"  # 核查验收未通过
    RECORD_FILING = "RECORD_FILING"  # 备案销号
    REPLY = "REPLY"  # 办结答复
    DISCLOSE = "DISCLOSE"  # 公开
    REQUEST_EXTENSION = "REQUEST_EXTENSION"  # 申请延期
    APPROVE_EXTENSION = "APPROVE_EXTENSION"  # 批准延期
    REJECT_EXTENSION = "REJECT_EXTENSION"  # 驳回延期
    SUSPEND = "SUSPEND"  # 中止
    RESUME = "RESUME"  # 恢复
    APPLY_RUNG = "APPLY_RUNG"  # 视情采取督办措施
    REFER_ACCOUNTABILITY = "REFER_ACCOUNTABILITY"  # 移交问责
    ACCEPT_REFERRAL = "ACCEPT_REFERRAL"  # 纪委监委受理
    CONCLUDE_REFERRAL = "CONCLUDE_REFERRAL"  # 纪委监委办结
    REOPEN = "REOPEN"  # 回头看重新打开
    HELP_VISIT = "HELP_VISIT"  # 帮扶
    RECALCULATE_DEADLINE = "RECALCULATE_DEADLINE"  # 重新计算期限 (e.g. after a calendar update)
    PROPOSE_RUNG = "PROPOSE_RUNG"  # 提出拟采取措施
    CONFIRM_ESCALATION = "CONFIRM_ESCALATION"  # 确认拟采取措施
    DISMISS_ESCALATION = "DISMISS_ESCALATION"  # 不予采取拟议措施
    DE_ESCALATE = "DE_ESCALATE"  # 降低督办措施
    VERIFY_REFERRAL = "VERIFY_REFERRAL"  # 整改办核实追责建议并移交
    RETURN_REFERRAL = "RETURN_REFERRAL"  # 整改办退回追责建议稿 (path B draft back to the lead supervising unit)
    SPOT_CHECK = "SPOT_CHECK"  # 省级抽查结果 (a fanned-out item's sampled child, issue 13)


class Rung(StrEnum):
    """Escalation measures in their canonical severity order (domain.md §6.1)."""

    NOTICE_LETTER = "NOTICE_LETTER"  # 函告
    WARNING = "WARNING"  # 警示
    CIRCULAR = "CIRCULAR"  # 通报
    SUPERVISION_ORDER = "SUPERVISION_ORDER"  # 督办
    LISTED_SUPERVISION = "LISTED_SUPERVISION"  # 挂牌督办
    SUMMONS = "SUMMONS"  # 约谈
    REGIONAL_APPROVAL_RESTRICTION = "REGIONAL_APPROVAL_RESTRICTION"  # 区域限批
    ACCOUNTABILITY_TRANSFER = "ACCOUNTABILITY_TRANSFER"  # 移交问责
    # Henan city office (000:310): 专题向市委、市政府主要领导报告. Not in the canonical list of
    # 000:446; ranked with 挂牌督办 (INFERRED). Appended so the canonical levels 1..8 never move.
    LEADERSHIP_REPORT = "LEADERSHIP_REPORT"  # 专题报告


# The canonical ladder of 000:446 in its severity order (levels 1..8).
RUNG_ORDER: tuple[Rung, ...] = (
    Rung.NOTICE_LETTER,
    Rung.WARNING,
    Rung.CIRCULAR,
    Rung.SUPERVISION_ORDER,
    Rung.LISTED_SUPERVISION,
    Rung.SUMMONS,
    Rung.REGIONAL_APPROVAL_RESTRICTION,
    Rung.ACCOUNTABILITY_TRANSFER,
)
_EXTRA_LEVELS = {Rung.LEADERSHIP_REPORT: 5}


def rung_level(rung: Rung) -> int:
    """Severity level 1..8 of a rung (0 means no escalation)."""
    if rung in _EXTRA_LEVELS:
        return _EXTRA_LEVELS[rung]
    return RUNG_ORDER.index(rung) + 1


class RungMode(StrEnum):
    """How a rung of a ladder takes effect when it is due (issue 9)."""

    AUTOMATIC = "AUTOMATIC"  # 自动实施: the engine applies it (SYSTEM actor)
    PROPOSED = "PROPOSED"  # 拟采取措施: recorded as a proposal; an authorised person confirms or dismisses


class ProposalStatus(StrEnum):
    PENDING = "PENDING"  # 待确认
    CONFIRMED = "CONFIRMED"  # 已确认实施
    DISMISSED = "DISMISSED"  # 不予采取


class LadderResume(StrEnum):
    """Where the ladder of a stage resumes after its deadline is re-set (send-back, reopen)."""

    REACHED = "REACHED"  # at the rung already reached: the next overdue climbs from there
    RESTART = "RESTART"  # from the first rung again


class Finding(StrEnum):
    """Result of investigating a petition (调查核实结论)."""

    SUBSTANTIATED = "SUBSTANTIATED"  # 属实
    PARTLY_SUBSTANTIATED = "PARTLY_SUBSTANTIATED"  # 部分属实
    UNSUBSTANTIATED = "UNSUBSTANTIATED"  # 不属实


class DeadlineKind(StrEnum):
    """Forms of 整改时限 (domain.md §5.1)."""

    IMMEDIATE_AND_ONGOING = "IMMEDIATE_AND_ONGOING"  # 立行立改,持续推进
    IMMEDIATE_AND_LONG_TERM = "IMMEDIATE_AND_LONG_TERM"  # 立即整改,长期坚持
    ONGOING = "ONGOING"  # 持续推进
    DATE = "DATE"  # 2022年12月31日
    DATE_THEN_LONG_TERM = "DATE_THEN_LONG_TERM"  # 2021年12月31日(长期坚持)
    MONTH = "MONTH"  # 2022年9月


class DayCount(StrEnum):
    """How a time limit counts days."""

    CALENDAR = "CALENDAR"  # 自然日
    WORKING = "WORKING"  # 工作日


class PetitionClosure(StrEnum):
    """Which closure path a substantiated petition takes (domain.md §4.3, INFERRED)."""

    SIMPLE = "SIMPLE"  # 办结答复 → 公开 → 销号
    FULL_5_STEP = "FULL_5_STEP"  # 初审 → 公示 → 申请 → 核查 → 备案


class ReferralPath(StrEnum):
    """Why an accountability referral was opened (domain.md §4.6)."""

    PERFORMANCE = "PERFORMANCE"  # A: 整改不力/逾期
    FAKE_RECTIFICATION = "FAKE_RECTIFICATION"  # B: 表面/敷衍/虚假整改
    INSPECTION_DOSSIER = "INSPECTION_DOSSIER"  # C: 督察组移交
    ESCALATION = "ESCALATION"  # legacy: ladder reached 移交问责 (cases filed before issue 9)


class ReferralStatus(StrEnum):
    DRAFT = "DRAFT"  # path B: drafted by the lead supervising unit, awaiting 整改办 verification
    RETURNED = "RETURNED"  # path B: a draft the office sent back to the lead, with its reason (never referred)
    OPEN = "OPEN"  # 已移交
    ACCEPTED = "ACCEPTED"  # 已受理
    CONCLUDED = "CONCLUDED"  # 已办结


# A referral the discipline commission has received (a DRAFT is not yet referred, a RETURNED draft
# never was): what makes a case visible to the commission (domain/visibility.py Scope.REFERRED).
REFERRED_STATUSES = frozenset({ReferralStatus.OPEN, ReferralStatus.ACCEPTED, ReferralStatus.CONCLUDED})
# The same test in PostgreSQL over case_projection.detail (admin/readmodel.py).
REFERRED_JSONPATH = '$.referrals[*] ? (@.status == "OPEN" || @.status == "ACCEPTED" || @.status == "CONCLUDED")'


class LookbackFinding(StrEnum):
    """What a look-back (回头看) found on a closed case."""

    REBOUND = "REBOUND"  # 问题反弹
    NOT_IN_PLACE = "NOT_IN_PLACE"  # 整改不到位
    FAKE_RECTIFICATION = "FAKE_RECTIFICATION"  # 虚假整改 (000:431; the referral takes path B of §4.6)


STAGE_LABELS_ZH: dict[Stage, str] = {
    Stage.REGISTERED: "建档立案",
    Stage.TRANSFERRED: "已交办待签收",
    Stage.INVESTIGATING: "调查核实",
    Stage.RECTIFYING: "整改中",
    Stage.PRELIM_REVIEW: "初审",
    Stage.PUBLIC_POSTING: "公示",
    Stage.CLOSURE_APPLICATION: "销号申请",
    Stage.VERIFICATION: "核查验收",
    Stage.FILING: "备案",
    Stage.REPLY: "办结答复",
    Stage.DISCLOSURE: "公开",
    Stage.CLOSED: "已销号",
    Stage.LONG_TERM_MAINTENANCE: "长期坚持",
    Stage.ARCHIVED: "已归档",
}

ACTION_LABELS_ZH: dict[Action, str] = {
    Action.AMEND: "补正案件信息",
    Action.TRANSFER: "交办",
    Action.ACKNOWLEDGE: "签收",
    Action.RECORD_FINDING: "调查核实结论",
    Action.REPORT_PROGRESS: "调度报告",
    Action.COMPLETE_MEASURE: "措施完成",
    Action.SUBMIT_COMPLETION: "申报整改完成",
    Action.PRELIM_PASS: "初审通过",
    Action.PRELIM_REJECT: "初审退回",
    Action.OBJECT: "公示异议",
    Action.UPHOLD_OBJECTION: "异议成立",
    Action.DISMISS_OBJECTION: "异议不成立",
    Action.APPLY_CLOSURE: "提交销号申请",
    Action.VERIFY_PASS: "核查验收通过",
    Action.VERIFY_FAIL: "核查验收未通过",
    Action.RECORD_FILING: "备案销号",
    Action.REPLY: "办结答复",
    Action.DISCLOSE: "公开",
    Action.REQUEST_EXTENSION: "申请延期",
    Action.APPROVE_EXTENSION: "批准延期",
    Action.REJECT_EXTENSION: "驳回延期",
    Action.SUSPEND: "中止",
    Action.RESUME: "恢复",
    Action.APPLY_RUNG: "采取督办措施",
    Action.REFER_ACCOUNTABILITY: "移交问责",
    Action.ACCEPT_REFERRAL: "受理问责移交",
    Action.CONCLUDE_REFERRAL: "问责办结",
    Action.REOPEN: "回头看重新整改",
    Action.HELP_VISIT: "帮扶",
    Action.RECALCULATE_DEADLINE: "重新计算期限",
    Action.PROPOSE_RUNG: "提出拟采取督办措施",
    Action.CONFIRM_ESCALATION: "确认拟采取措施",
    Action.DISMISS_ESCALATION: "不予采取拟议措施",
    Action.DE_ESCALATE: "降低督办措施",
    Action.VERIFY_REFERRAL: "核实追责建议并移交",
    Action.RETURN_REFERRAL: "退回追责建议稿",
    Action.SPOT_CHECK: "录入省级抽查结果",
}

# Ledger events written by the engine itself (human actions use ACTION_LABELS_ZH).
EVENT_LABELS_ZH: dict[str, str] = {
    "FILED": "立案",
    "DEADLINE_SET": "期限设定",
    # issue 13, follow-up timers (domain/followup.py)
    "FOLLOWUP_SCHEDULED": "节点与月报计时",
    "MILESTONE_REMINDER": "措施节点到期提醒",
    "MILESTONE_ESCALATED": "措施节点逾期督办",
    "REPORT_REMINDER": "月度调度报告提醒",
    "REPORT_ESCALATED": "月度调度报告逾期督办",
    "ESCALATED": "逾期督办",
    "OVERDUE_REMINDER": "逾期提醒",
    "POSTING_ENDED": "公示期满",
    "ESCALATION_STOPPED": "督办停止",
    "ARCHIVED": "归档",
    "REFERRAL_OPENED": "移交纪委监委",
    "ESCALATION_PROPOSED": "拟采取督办措施",
    "ESCALATION_RESUMED": "督办恢复",
    # County fan-out and multi-level closure (issue 13).
    "FANNED_OUT": "分解到县市区",
    "CHILD_CLOSED": "子案件销号",
    "CHILD_REOPENED": "子案件重新整改",
    "ALL_CHILDREN_CLOSED": "子案件全部销号",
    "SPOT_CHECK_SAMPLED": "省级抽查抽样",
}

def event_label_zh(event: str) -> str:
    """The Chinese label of a ledger event: a human action's, else the engine event's."""
    try:
        return ACTION_LABELS_ZH[Action(event)]
    except ValueError:
        return EVENT_LABELS_ZH.get(event, event)


RUNG_LABELS_ZH: dict[Rung, str] = {
    Rung.NOTICE_LETTER: "函告",
    Rung.WARNING: "警示",
    Rung.CIRCULAR: "通报",
    Rung.SUPERVISION_ORDER: "督办",
    Rung.LISTED_SUPERVISION: "挂牌督办",
    Rung.SUMMONS: "约谈",
    Rung.REGIONAL_APPROVAL_RESTRICTION: "区域限批",
    Rung.ACCOUNTABILITY_TRANSFER: "移交问责",
    Rung.LEADERSHIP_REPORT: "专题向市委市政府主要领导报告",
}

RUNG_MODE_LABELS_ZH: dict[RungMode, str] = {
    RungMode.AUTOMATIC: "自动实施",
    RungMode.PROPOSED: "拟采取(需确认)",
}

PROPOSAL_STATUS_LABELS_ZH: dict[ProposalStatus, str] = {
    ProposalStatus.PENDING: "待确认",
    ProposalStatus.CONFIRMED: "已确认",
    ProposalStatus.DISMISSED: "不予采取",
}

ROLE_LABELS_ZH: dict[Role, str] = {
    Role.RECTIFICATION_OFFICE: "整改办",
    Role.LEAD_SUPERVISOR: "牵头督导单位",
    Role.ASSIST_SUPERVISOR: "配合督导单位",
    Role.RESPONSIBLE_UNIT: "主体责任单位",
    Role.DISCIPLINE_COMMISSION: "纪委监委",
    Role.SUPERVISION_OFFICE: "督查室",
    Role.PUBLIC: "公众",
    Role.AUDITOR: "审计人员",
    Role.SYSTEM: "系统",
}

KIND_LABELS_ZH: dict[CaseKind, str] = {
    CaseKind.FEEDBACK_PROBLEM: "反馈问题",
    CaseKind.PETITION: "信访举报件",
    CaseKind.WARNING_FILM: "警示片问题",
}

FINDING_LABELS_ZH: dict[Finding, str] = {
    Finding.SUBSTANTIATED: "属实",
    Finding.PARTLY_SUBSTANTIATED: "部分属实",
    Finding.UNSUBSTANTIATED: "不属实",
}

REFERRAL_PATH_LABELS_ZH: dict[ReferralPath, str] = {
    ReferralPath.PERFORMANCE: "整改不力/逾期",
    ReferralPath.FAKE_RECTIFICATION: "表面/敷衍/虚假整改",
    ReferralPath.INSPECTION_DOSSIER: "督察组移交",
    ReferralPath.ESCALATION: "督办升级至移交问责(旧规则)",
}

LOOKBACK_LABELS_ZH: dict[LookbackFinding, str] = {
    LookbackFinding.REBOUND: "问题反弹",
    LookbackFinding.NOT_IN_PLACE: "整改不到位",
    LookbackFinding.FAKE_RECTIFICATION: "虚假整改",
}
