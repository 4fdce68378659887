"""The office's own words for case kinds and stages (domain.md §2 and the §9 glossary), as the
import accepts them: simplified and traditional characters, the engine's English values, and a
label with its English beside it ("反馈问题 FEEDBACK_PROBLEM", as the import template writes it).

An unknown word is refused with every accepted value, in Chinese and English.
"""

from __future__ import annotations

from domain.enums import KIND_LABELS_ZH, STAGE_LABELS_ZH, CaseKind, Stage
from domain.errors import InvalidFilingError

# Kind terms of the seeds (domain.md §2.1–2.3, §9), first the one the template shows.
KIND_TERMS: dict[CaseKind, tuple[str, ...]] = {
    CaseKind.FEEDBACK_PROBLEM: (
        "反馈问题整改任务", "反馈问题", "反馈问题整改", "督察反馈问题", "回头看反馈问题", "整改任务",
        "反饋問題", "反饋問題整改任務",
    ),
    CaseKind.PETITION: (
        "信访举报交办件", "信访举报件", "群众举报件", "群众信访举报件", "信访件", "信访投诉件", "交办件", "转办件",
        "交办信访件", "信訪舉報件", "信訪舉報交辦件", "交辦件", "轉辦件",
    ),
    CaseKind.WARNING_FILM: (
        "警示片披露问题", "警示片问题", "警示片发现问题", "警示片指出问题", "警示片披露問題",
    ),
}
KIND_EN: dict[CaseKind, str] = {
    CaseKind.FEEDBACK_PROBLEM: "feedback problem",
    CaseKind.PETITION: "petition / complaint case",
    CaseKind.WARNING_FILM: "warning-film problem",
}

# Stage terms (the §9 glossary and the console's labels).
STAGE_TERMS: dict[Stage, tuple[str, ...]] = {
    Stage.REGISTERED: ("建档立案", "立案", "待交办", "建檔立案"),
    Stage.TRANSFERRED: ("已交办待签收", "已交办", "交办", "待签收", "已交辦"),
    Stage.INVESTIGATING: ("调查核实", "調查核實"),
    Stage.RECTIFYING: ("整改中", "整改", "正在整改", "整改推进中"),
    Stage.PRELIM_REVIEW: ("初审", "初審"),
    Stage.PUBLIC_POSTING: ("公示", "公示公开"),
    Stage.CLOSURE_APPLICATION: ("销号申请", "验收申请", "申请", "驗收申請"),
    Stage.VERIFICATION: ("核查验收", "验收", "核查", "驗收"),
    Stage.FILING: ("备案", "備案"),
    Stage.REPLY: ("办结答复", "办结", "答复", "辦結"),
    Stage.DISCLOSURE: ("公开", "信息公开", "公開"),
    Stage.CLOSED: ("已销号", "销号", "办结销号", "对账销号", "挂账销号", "銷號"),
    Stage.LONG_TERM_MAINTENANCE: ("长期坚持", "防止反弹", "长期坚持、防止反弹", "長期堅持"),
    Stage.ARCHIVED: ("归档", "歸檔"),
}
for _stage, _label in STAGE_LABELS_ZH.items():  # the console's own label is always accepted
    if _label not in STAGE_TERMS[_stage]:
        STAGE_TERMS[_stage] = (_label, *STAGE_TERMS[_stage])
for _kind, _label in KIND_LABELS_ZH.items():
    if _label not in KIND_TERMS[_kind]:
        KIND_TERMS[_kind] = (*KIND_TERMS[_kind], _label)

_KIND_BY_TERM = {t: k for k, terms in KIND_TERMS.items() for t in terms}
_STAGE_BY_TERM = {t: s for s, terms in STAGE_TERMS.items() for t in terms}
# What an import may say about a new case's stage: it is filed at 建档立案 REGISTERED.
IMPORTABLE_STAGES = frozenset({Stage.REGISTERED})


def _candidates(raw: str) -> list[str]:
    """The text, with its spaces dropped, and each of its words: "反馈问题 FEEDBACK_PROBLEM"."""
    text = " ".join(str(raw).replace("\u3000", " ").split())
    out = [text, text.replace(" ", "")]
    out += text.replace("(", " ").replace(")", " ").replace("(", " ").replace(")", " ").split()
    return [c for c in out if c]


def accepted_kinds() -> str:
    """Every accepted kind, one group per kind: "FEEDBACK_PROBLEM (feedback problem): 反馈问题整改任务、…"."""
    return "; ".join(f"{k.value} ({KIND_EN[k]}): {'、'.join(KIND_TERMS[k])}" for k in CaseKind)


def accepted_stages() -> str:
    return "; ".join(f"{s.value}: {'、'.join(STAGE_TERMS[s])}" for s in Stage)


def kind_from_term(raw: object) -> CaseKind:
    """The case kind an office word (or the English value) names.

    Raises:
        InvalidFilingError: naming the word and listing every accepted value, Chinese and English.
    """
    for c in _candidates(str(raw or "")):
        if c in _KIND_BY_TERM:
            return _KIND_BY_TERM[c]
        if c.upper() in CaseKind.__members__:
            return CaseKind(c.upper())
    raise InvalidFilingError(
        f"unknown case kind {str(raw or '')!r} (类型无法识别); accepted 可用: {accepted_kinds()}")


def stage_from_term(raw: object) -> Stage:
    """The stage an office word (or the English value) names.

    Raises:
        InvalidFilingError: naming the word and listing every accepted value, Chinese and English.
    """
    for c in _candidates(str(raw or "")):
        if c in _STAGE_BY_TERM:
            return _STAGE_BY_TERM[c]
        if c.upper() in Stage.__members__:
            return Stage(c.upper())
    raise InvalidFilingError(
        f"unknown stage {str(raw or '')!r} (阶段无法识别); accepted 可用: {accepted_stages()}")


def check_import_stage(raw: object) -> Stage:
    """An import row's stage: recognised, and one a new case can be filed at (建档立案 REGISTERED).

    Raises:
        InvalidFilingError: unknown, or a later stage (the case must be filed and then moved by its actions).
    """
    stage = stage_from_term(raw)
    if stage not in IMPORTABLE_STAGES:
        raise InvalidFilingError(
            f"阶段 stage {str(raw)!r} = {STAGE_LABELS_ZH[stage]} {stage.value}: 导入只能建档立案 "
            f"(an import files new cases at 建档立案 REGISTERED; a case already further along is filed, "
            f"then moved by its actions, each recorded in the 台账 ledger)")
    return stage
