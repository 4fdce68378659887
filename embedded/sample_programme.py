"""The programme `make run` builds from the sample cases (issue 13): the city's rectification
plan for the second-round feedback (the seventeen city items FB-01…FB-17 of 000:433–638).

From the seeds: the round, the locality (xx市, masked in the seed), the feedback date 2021-07-16
(000:382) and the counties the plan names (蓝山县, 祁阳市; "xx县" is masked in the seed). The
plan's reference and its submission at the start of the run are INFERRED for the demo: the
six-month report is then due six months after the run first started.
"""

from __future__ import annotations

from datetime import date

from domain.model import Actor, CaseFiling
from domain.programme import ProgrammeAction, ProgrammeRequest, ProgrammeSpec

SAMPLE_PROGRAMME_ID = "R2-XXCITY"


def sample_programme(filings: list[CaseFiling]) -> tuple[ProgrammeSpec, list[str]] | None:
    """The programme spec and the case numbers that belong to it (the city feedback items of one round)."""
    items = [f for f in filings if f.case_no.startswith("FB-") and f.inspection_round]
    if not items:
        return None
    rnd = items[0].inspection_round
    members = [f.case_no for f in items if f.inspection_round == rnd]
    spec = ProgrammeSpec(
        programme_id=SAMPLE_PROGRAMME_ID, name="xx市贯彻落实第二轮中央生态环境保护督察报告整改方案",
        inspection_round=rnd, locality="xx市", counties=["蓝山县", "祁阳市", "xx县"],
        feedback_date=date(2021, 7, 16),
        plan_text="对照督察反馈问题清单,17项整改任务逐项明确责任单位、整改目标、整改措施和整改时限 (000:433–638)",
        plan_ref="xx市整改方案(样例 sample)")
    return spec, members


def plan_submission(actor: Actor) -> ProgrammeRequest:
    return ProgrammeRequest(action=ProgrammeAction.SUBMIT_PLAN, actor=actor, request_id="make-run-plan",
                            reference="xx市整改方案(样例 sample)")


def with_programme(filings: list[CaseFiling], members: list[str], programme_id: str) -> list[CaseFiling]:
    keep = set(members)
    return [f.model_copy(update={"programme_id": programme_id}) if f.case_no in keep else f for f in filings]
