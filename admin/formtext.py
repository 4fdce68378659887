"""Small helpers the console's forms and sheets share (split out of admin/service.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FormError(ValueError):
    """A field of an action or filing form is missing or malformed; the message names it."""


def _lines(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(x).strip() for x in raw if str(x).strip()]
    return [x.strip() for x in str(raw).replace("\r", "").replace(";", "\n").replace(";", "\n").split("\n")
            if x.strip()]


def _units(raw: Any) -> list[str]:
    """Unit names, one per line (or separated by ';'). Not split on 、 or commas: names contain them
    (e.g. 蓝山县委、县政府 is one responsible unit)."""
    out: list[str] = []
    for u in _lines(raw):
        if u not in out:
            out.append(u)
    return out


def _picked(form: Mapping[str, Any], name: str) -> list[str]:
    """Evidence files ticked in a form (checkboxes sharing one name): their references."""
    values = form.getlist(name) if hasattr(form, "getlist") else _lines(form.get(name))
    return [str(v).strip() for v in values if str(v).strip()]
