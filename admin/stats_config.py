"""Settings of the leadership statistics (read by the console; they change no case's history).

* `STATS_YELLOW_WORKING_DAYS` (default 5): a case due within this many working days is yellow.
* `STATS_COUNTIES` (default none): the locality's counties (县市区), comma- or 、-separated, e.g.
  `蓝山县,祁阳市,宁远县`; needed for county-level cities (…市), which the name pattern cannot tell
  from the city itself. Without it counties are recognised by name (…县, …区, …旗).
"""

from __future__ import annotations

import os
import re

from domain.statistics import DEFAULT_YELLOW_WORKING_DAYS, LightRule


class StatsConfigError(ValueError):
    pass


def light_rule_from_env() -> LightRule:
    raw = os.environ.get("STATS_YELLOW_WORKING_DAYS", "").strip()
    if not raw:
        return LightRule(DEFAULT_YELLOW_WORKING_DAYS)
    try:
        return LightRule(int(raw))
    except ValueError as e:
        raise StatsConfigError(f"STATS_YELLOW_WORKING_DAYS={raw!r}: {e}") from None


def counties_from_env() -> tuple[str, ...]:
    raw = os.environ.get("STATS_COUNTIES", "")
    names = [n.strip() for n in re.split(r"[,,、;\n]", raw) if n.strip()]
    for n in names:
        if len(n) > 50 or any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in n):
            raise StatsConfigError(f"STATS_COUNTIES: {n[:50]!r} is not a county name")
    return tuple(dict.fromkeys(names))
