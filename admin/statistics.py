"""Leadership statistics (领导统计, issue 13): 红黄绿灯, completion rates by round, unit and county,
closures per month, half-yearly and annual summaries. Every figure is over the cases the reader
sees: the cases come from the read model's one scoping condition (`ReadModel.scope_sql`, from
domain/visibility.py), and the ledger is read only for those cases. The page needs
View.DASHBOARD (the same audience as the dashboard; the public has neither).

Reusable pieces (the monthly dispatch report may use them):
* `progress_by(cases, key)` — per responsible unit (or county, or round): total, done, completion
  rate, red / yellow / green / no deadline / done counts, escalated — over `CaseFigures`;
* `Statistics.case_figures(user, round)` — the scoped cases as `CaseFigures` (light computed today).

Which cases count: `counted()` (one place). Today every case counts; when parent and child
cases exist (county fan-out), parents are to be left out there, so that completion counts the
children that do the work.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from admin.readmodel import LIST_COLUMNS, ReadModel
from admin.service import FormError, stage_label
from admin.users import User
from domain.calendar import SHANGHAI, local_date
from domain.enums import Stage
from domain.statistics import (
    CITY_LEVEL,
    LIGHT_LABELS_EN,
    LIGHT_LABELS_ZH,
    LIGHT_ORDER,
    Light,
    LightRule,
    Period,
    counties_of,
    current_period,
    is_done,
    light_for,
    parse_period,
    rate,
)
from domain.text import check_text
from domain.visibility import Part, View


@dataclass(frozen=True)
class CaseFigures:
    """What the statistics need of one case (scoped already)."""

    case_no: str
    stage: str
    responsible_units: tuple[str, ...]
    counties: tuple[str, ...]
    inspection_round: str
    due_date: date | None
    light: Light
    escalation_level: int
    filed_at: datetime


def counted(row: Mapping[str, Any]) -> bool:
    """Whether a case counts in the figures: a fanned-out parent does not (its children, one per
    county or unit, carry the work; `is_parent` comes with LIST_COLUMNS, admin/fanout_view.py)."""
    return not row.get("is_parent")


_COLUMNS = LIST_COLUMNS + ", filing->>'jurisdiction' AS jurisdiction"


@dataclass
class StatsFilter:
    inspection_round: str = ""
    period: Period | None = None
    light: str = ""  # list only the cases with this light (default: red and yellow)
    programme_id: str = ""  # one programme (整改方案, issue 13), or all

    @classmethod
    def from_params(cls, params: Mapping[str, str], today: date) -> StatsFilter:
        def one(name: str, n: int) -> str:
            try:
                return check_text(str(params.get(name, "") or ""), n, multiline=False).strip()
            except ValueError as e:
                raise FormError(f"{name}: {e}") from None

        rnd, period_text, light = one("round", 200), one("period", 20), one("light", 20).upper()
        programme = one("programme", 128)
        try:
            period = parse_period(period_text) if period_text else current_period(today)
        except ValueError as e:
            raise FormError(str(e)) from None
        if light and light not in Light.__members__:
            raise FormError(f"light {light!r} is not one of " + ", ".join(Light.__members__))
        return cls(inspection_round=rnd.strip(), period=period, light=light, programme_id=programme)


def _bucket() -> dict[str, Any]:
    return {"total": 0, "done": 0, "escalated": 0, **{lt.value: 0 for lt in LIGHT_ORDER}}


def progress_by(cases: Iterable[CaseFigures], key: Callable[[CaseFigures], Iterable[str]]) -> list[dict[str, Any]]:
    """Per key (a case may have several: each of its units, each of its counties): counts of
    cases, done, escalated and each light, and the completion rate; most red first."""
    out: dict[str, dict[str, Any]] = defaultdict(_bucket)
    for c in cases:
        for k in dict.fromkeys(key(c)):
            b = out[k]
            b["total"] += 1
            b["done"] += is_done(c.stage)
            b["escalated"] += c.escalation_level > 0
            b[c.light.value] += 1
    rows = [{"name": k, **b, "rate": rate(b["done"], b["total"])} for k, b in out.items()]
    rows.sort(key=lambda r: (-r["RED"], -r["YELLOW"], r["rate"] if r["rate"] is not None else 101, r["name"]))
    return rows


def light_counts(cases: Iterable[CaseFigures]) -> list[dict[str, Any]]:
    n: dict[Light, int] = defaultdict(int)
    for c in cases:
        n[c.light] += 1
    return [{"light": lt.value, "label_zh": LIGHT_LABELS_ZH[lt], "label_en": LIGHT_LABELS_EN[lt], "n": n[lt]}
            for lt in LIGHT_ORDER]


def _period_bounds(p: Period) -> tuple[datetime, datetime]:
    """[start, end) of the period as UTC instants (Asia/Shanghai days)."""
    start = datetime.combine(p.start, time(0), tzinfo=SHANGHAI).astimezone(UTC)
    end = datetime.combine(p.end + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)
    return start, end


@dataclass
class Statistics:
    reads: ReadModel
    counties: tuple[str, ...] = ()
    today_fn: Callable[[], date] = field(default=lambda: local_date(datetime.now(UTC)))

    @property
    def rule(self) -> LightRule:
        return self.reads.light_rule

    async def _scoped(self, user: User, f: StatsFilter) -> tuple[Any, list[Any], frozenset[Part]]:
        reader = self.reads.require(user, View.DASHBOARD)
        common = self.reads.common_parts(reader)
        if f.inspection_round and Part.RECORD not in common:
            raise FormError("filter 'round' is not available to your role")
        if f.programme_id and Part.RECORD not in common:
            raise FormError("filter 'programme' is not available to your role")
        args: list[Any] = []
        where = self.reads.scope_sql(reader, args)
        if f.inspection_round:
            args.append(f.inspection_round)
            where += f" AND inspection_round = ${len(args)}"
        if f.programme_id:
            args.append(f.programme_id)
            where += f" AND programme_id = ${len(args)}"
        recs = await self.reads.pool.fetch(f"SELECT {_COLUMNS} FROM case_projection WHERE {where} ORDER BY case_no",
                                           *args)
        return reader, [r for r in recs if counted(r)], common

    def figures(self, recs: Iterable[Mapping[str, Any]], today: date) -> list[CaseFigures]:
        out = []
        for r in recs:
            try:
                light = light_for(r["stage"], r["due_date"], today, self.reads.calendar, self.rule)
            except ValueError:
                continue
            units = tuple(r["responsible_units"] or ())
            out.append(CaseFigures(
                case_no=r["case_no"], stage=r["stage"], responsible_units=units,
                counties=tuple(counties_of(units, r.get("jurisdiction") or "", self.counties)),
                inspection_round=r["inspection_round"] or "", due_date=r["due_date"], light=light,
                escalation_level=r["escalation_level"] or 0, filed_at=r["filed_at"]))
        return out

    async def case_figures(self, user: User, inspection_round: str = "", programme_id: str = "") -> list[CaseFigures]:
        """The cases this user sees (one round and/or programme, or all) with their light today."""
        _reader, recs, _common = await self._scoped(
            user, StatsFilter(inspection_round=inspection_round, programme_id=programme_id))
        return self.figures(recs, self.today_fn())

    async def summary(self, user: User, f: StatsFilter) -> dict[str, Any]:
        """Everything the statistics page, its JSON API and its exports show."""
        reader, recs, common = await self._scoped(user, f)
        today = self.today_fn()
        cases = self.figures(recs, today)
        by_no = {c.case_no: c for c in cases}
        record = Part.RECORD in common
        lit = Part.DEADLINE in common
        wanted = {f.light} if f.light else {Light.RED.value, Light.YELLOW.value}
        listed = []
        for r in self.reads.rows(reader, [r for r in recs if r["case_no"] in by_no]):
            c = by_no[r["case_no"]]
            if "light" in r and c.light.value in wanted:  # the light of `today` (the figures'), not the clock's
                r["light"], r["light_zh"] = c.light.value, LIGHT_LABELS_ZH[c.light]
                listed.append(r)
        listed.sort(key=lambda r: (LIGHT_ORDER.index(Light(r["light"])), str(r.get("due_date") or ""), r["case_no"]))
        period = f.period or current_period(today)
        out: dict[str, Any] = {
            "today": today.isoformat(),
            "yellow_working_days": self.rule.yellow_working_days,
            "filters": {"round": f.inspection_round, "programme": f.programme_id, "period": period.key,
                        "light": f.light},
            "total": len(cases),
            "done": sum(is_done(c.stage) for c in cases),
            "lights": light_counts(cases) if lit else [],
            "cases": listed[:500] if lit else [],
            "by_round": progress_by(cases, lambda c: [c.inspection_round or "(未填 none)"]) if record else [],
            "by_unit": progress_by(cases, lambda c: c.responsible_units) if record else [],
            "by_county": progress_by(cases, lambda c: c.counties) if record else [],
            "period": await self.period_summary(cases, period, record),
        }
        out["rate"] = rate(out["done"], out["total"])
        return out

    async def period_summary(self, cases: list[CaseFigures], p: Period, record: bool = True) -> dict[str, Any]:
        """The half-year or year: cases filed by its end, completed by its end (the stage each case
        was in at the end, from the ledger), closures (销号) per month within it, escalations and
        reopenings within it, and the same per unit and county."""
        start, end = _period_bounds(p)
        nos = [c.case_no for c in cases]
        pool = self.reads.pool
        at_end = {r["case_no"]: r["to_stage"] for r in await pool.fetch(
            """SELECT DISTINCT ON (case_no) case_no, to_stage FROM ledger
               WHERE case_no = ANY($1) AND at < $2 AND to_stage IS NOT NULL ORDER BY case_no, seq DESC""", nos, end)}
        events = await pool.fetch(
            """SELECT case_no, event, to_stage,
                      to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month
               FROM ledger WHERE case_no = ANY($1) AND at >= $2 AND at < $3
                 AND (to_stage = 'CLOSED' OR event IN ('ESCALATED', 'REOPEN', 'FILED'))""", nos, start, end)
        per_month = {m: 0 for m in p.months()}
        closed_cases: set[str] = set()
        escalations = reopened = filed = 0
        for e in events:
            if e["to_stage"] == Stage.CLOSED.value:
                per_month[e["month"]] = per_month.get(e["month"], 0) + 1
                closed_cases.add(e["case_no"])
            elif e["event"] == "ESCALATED":
                escalations += 1
            elif e["event"] == "REOPEN":
                reopened += 1
            elif e["event"] == "FILED":
                filed += 1
        existing = [c for c in cases if c.case_no in at_end]
        done_at_end = {c.case_no for c in existing if is_done(at_end[c.case_no])}

        def rows(key: Callable[[CaseFigures], Iterable[str]]) -> list[dict[str, Any]]:
            agg: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "done": 0, "closed_in_period": 0})
            for c in existing:
                for k in dict.fromkeys(key(c)):
                    agg[k]["total"] += 1
                    agg[k]["done"] += c.case_no in done_at_end
                    agg[k]["closed_in_period"] += c.case_no in closed_cases
            return sorted(({"name": k, **v, "rate": rate(v["done"], v["total"])} for k, v in agg.items()),
                          key=lambda r: (r["rate"] if r["rate"] is not None else 101, r["name"]))

        return {
            "key": p.key, "kind": p.kind.value, "label_zh": p.label_zh, "label_en": p.label_en,
            "start": p.start.isoformat(), "end": p.end.isoformat(),
            "total_at_end": len(existing), "done_at_end": len(done_at_end),
            "rate_at_end": rate(len(done_at_end), len(existing)),
            "filed_in_period": filed, "closures_in_period": sum(per_month.values()),
            "cases_closed_in_period": len(closed_cases), "escalations_in_period": escalations,
            "reopened_in_period": reopened,
            "closures_per_month": [{"month": m, "n": n} for m, n in sorted(per_month.items())],
            "by_unit": rows(lambda c: c.responsible_units) if record else [],
            "by_county": rows(lambda c: c.counties) if record else [],
        }


def period_choices(today: date, years: int = 3) -> list[dict[str, str]]:
    """The periods the page offers: the half-years and years of the last few years, newest first."""
    out = []
    for y in range(today.year, today.year - years, -1):
        for key in ([f"{y}-H2"] if y < today.year or today.month > 6 else []) + [f"{y}-H1", f"{y}"]:
            p = parse_period(key)
            out.append({"key": p.key, "label": f"{p.label_zh} {p.label_en}"})
    return out


def summary_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, ensure_ascii=False, default=str)


__all__ = ["CITY_LEVEL", "CaseFigures", "Statistics", "StatsFilter", "counted", "light_counts", "period_choices",
           "progress_by", "stage_label"]
