"""Leadership statistics (领导统计, issue 13): the red / yellow / green status of a case (红黄绿灯),
the county of a case, completion, and the reporting periods. Pure: no I/O, no clock (today is
passed in), the working-day calendar is data (domain/calendar.py).

**Traffic light (红黄绿灯)** of a case, on its *current* due date (the one the case list shows,
`case_projection.due_date`; it expires at the end of that day, Asia/Shanghai):

| status | when |
| --- | --- |
| DONE 已办结 | the case is closed (CLOSED, ARCHIVED) or in long-term maintenance (长期坚持): no light |
| NO_DEADLINE 无时限 | an open case with no due date (立行立改 / 持续推进, or not yet transferred): grey |
| RED 红灯 | the due date has passed (the day after it, or later) |
| YELLOW 黄灯 | due within `yellow_working_days` working days: today, or at most that many working days after today |
| GREEN 绿灯 | due later |

"Working days left" counts the working days after today up to and including the due date (as
the case list does); a due date today leaves 0 and is yellow, not red. A due date on a holiday or
a weekend counts only the working days before it. A suspended case (中止) is lit on its recorded
due date, which moves when it is resumed.

**County (县市区) of a case**: the counties its responsible units name (see `county_of`), else the
county its jurisdiction names, else `CITY_LEVEL` (市级: city departments, the city Party committee
and government, or "各县市区…" not yet fanned out into one case per county). A case naming units
of two counties counts for each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from domain import enums
from domain.calendar import WorkingCalendar, count_days
from domain.enums import DayCount, Stage

DEFAULT_YELLOW_WORKING_DAYS = 5  # INFERRED: a working week; offices set their own


class Light(StrEnum):
    RED = "RED"
    YELLOW = "YELLOW"
    GREEN = "GREEN"
    NO_DEADLINE = "NO_DEADLINE"
    DONE = "DONE"


LIGHT_LABELS_ZH: dict[Light, str] = {
    Light.RED: "红灯 逾期",
    Light.YELLOW: "黄灯 临期",
    Light.GREEN: "绿灯 正常",
    Light.NO_DEADLINE: "无时限",
    Light.DONE: "已办结",
}
LIGHT_LABELS_EN: dict[Light, str] = {
    Light.RED: "overdue",
    Light.YELLOW: "due soon",
    Light.GREEN: "on track",
    Light.NO_DEADLINE: "no deadline",
    Light.DONE: "closed",
}
LIGHT_ORDER = (Light.RED, Light.YELLOW, Light.GREEN, Light.NO_DEADLINE, Light.DONE)

# Completed for the completion rate: closed (销号), archived, or in long-term maintenance (长期坚持),
# the same set that ends a programme (domain.md §4.1 P5).
DONE_STAGES = enums.DONE_STAGES  # domain/enums.py


@dataclass(frozen=True)
class LightRule:
    """How near a due date turns a case yellow (configurable per deployment)."""

    yellow_working_days: int = DEFAULT_YELLOW_WORKING_DAYS

    def __post_init__(self) -> None:
        if not isinstance(self.yellow_working_days, int) or not 0 <= self.yellow_working_days <= 60:
            raise ValueError(f"yellow_working_days must be a whole number from 0 to 60, got {self.yellow_working_days!r}")


def working_days_left(cal: WorkingCalendar, today: date, due: date) -> int:
    """Working days after today up to and including the due date (0 when due today or before)."""
    if due <= today:
        return 0
    return count_days(cal, today + timedelta(days=1), due + timedelta(days=1), DayCount.WORKING)


def light_for(stage: str | Stage, due: date | None, today: date, cal: WorkingCalendar,
              rule: LightRule = LightRule()) -> Light:
    """The traffic light of one case today (see the module's table)."""
    try:
        st = Stage(stage)
    except ValueError:
        raise ValueError(f"unknown stage {stage!r}") from None
    if st in DONE_STAGES:
        return Light.DONE
    if due is None:
        return Light.NO_DEADLINE
    if due < today:
        return Light.RED
    if working_days_left(cal, today, due) <= rule.yellow_working_days:
        return Light.YELLOW
    return Light.GREEN


def is_done(stage: str) -> bool:
    try:
        return Stage(stage) in DONE_STAGES
    except ValueError:
        return False


# ------------------------------------------------------------------ counties

CITY_LEVEL = "市级"
CITY_LEVEL_EN = "city level"
# A unit named after a county-level division: a proper name (2-8 characters, not a prefix like
# 市/县/区/各, which mean "the city's", "the county's", "every") ending in 县, 区 or 旗, followed by
# the body (委, 政府, 人民政府, 党委, 纪委…) or nothing. County-level cities (…市, like 祁阳市) are
# told from the city itself only by the configured county list.
_COUNTY = re.compile(r"^(?![市县区各全])(?P<name>[^\s、,,()()]{1,7}?[县区旗])(?![县区旗])")


def county_of(unit: str, counties: Sequence[str] = ()) -> str | None:
    """The county a unit belongs to, or None (a city department, a collective "各县市区…").

    With a configured list (the locality's counties), a unit belongs to the listed county whose
    name, or name without its suffix (蓝山县 / 蓝山), it starts with; the list wins over the
    name pattern. Without one, a name like "蓝山县委、县政府" or "雨花区人民政府" gives 蓝山县 / 雨花区.
    """
    u = unit.strip()
    if not u:
        return None
    for c in counties:
        short = c[:-1] if len(c) > 2 and c[-1] in "县市区旗" else c
        if u.startswith(c) or (short and u.startswith(short)):
            return c
    m = _COUNTY.match(u)
    return m.group("name") if m else None


def counties_of(responsible_units: Iterable[str], jurisdiction: str = "",
                counties: Sequence[str] = ()) -> list[str]:
    """The counties of a case (at least one: CITY_LEVEL when nothing names a county)."""
    out: list[str] = []
    for u in responsible_units:
        c = county_of(u, counties)
        if c and c not in out:
            out.append(c)
    if not out and jurisdiction:
        c = county_of(jurisdiction, counties)
        if c:
            out.append(c)
    return out or [CITY_LEVEL]


# ------------------------------------------------------------------ periods


class PeriodKind(StrEnum):
    H1 = "H1"  # first half-year: report by the end of June (000:949)
    H2 = "H2"  # second half-year: by the end of December (000:949)
    YEAR = "YEAR"  # annual special report (000:1110)


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    year: int

    @property
    def start(self) -> date:
        return date(self.year, 7, 1) if self.kind is PeriodKind.H2 else date(self.year, 1, 1)

    @property
    def end(self) -> date:
        """The last day of the period (inclusive)."""
        return date(self.year, 6, 30) if self.kind is PeriodKind.H1 else date(self.year, 12, 31)

    @property
    def key(self) -> str:
        return str(self.year) if self.kind is PeriodKind.YEAR else f"{self.year}-{self.kind.value}"

    @property
    def label_zh(self) -> str:
        return {PeriodKind.H1: f"{self.year}年上半年(截至6月底)", PeriodKind.H2: f"{self.year}年下半年(截至12月底)",
                PeriodKind.YEAR: f"{self.year}年度"}[self.kind]

    @property
    def label_en(self) -> str:
        return {PeriodKind.H1: f"first half of {self.year} (to end of June)",
                PeriodKind.H2: f"second half of {self.year} (to end of December)",
                PeriodKind.YEAR: f"year {self.year}"}[self.kind]

    def months(self) -> list[str]:
        first = 7 if self.kind is PeriodKind.H2 else 1
        last = 6 if self.kind is PeriodKind.H1 else 12
        return [f"{self.year:04d}-{m:02d}" for m in range(first, last + 1)]


_PERIOD = re.compile(r"^(?P<y>\d{4})(?:-(?P<h>H[12]))?$")


def parse_period(text: str) -> Period:
    """'2026-H1', '2026-H2' or '2026' (the year); a clear error naming the accepted forms otherwise."""
    t = (text or "").strip().upper()
    m = _PERIOD.match(t)
    if m is None or not 2000 <= int(m["y"]) <= 2100:
        raise ValueError(f"period {text!r} is not one of YYYY-H1 (上半年), YYYY-H2 (下半年) or YYYY (年度), "
                         "e.g. 2026-H1, 2026")
    return Period(PeriodKind(m["h"]) if m["h"] else PeriodKind.YEAR, int(m["y"]))


def current_period(today: date) -> Period:
    """The half-year today falls in (the summary being prepared)."""
    return Period(PeriodKind.H1 if today.month <= 6 else PeriodKind.H2, today.year)


def rate(done: int, total: int) -> float | None:
    """Completion rate in percent, one decimal; None when there is nothing to complete."""
    return None if total <= 0 else round(100.0 * done / total, 1)
