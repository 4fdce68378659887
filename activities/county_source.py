"""Reads the locality's county list (COUNTIES_FILE, default deploy/counties.json) for county fan-out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from domain.fanout_types import CountyList
from domain.text import check_text


class CountyFileError(ValueError):
    """The county file cannot be read as a county list."""


def load_counties(path: str | Path | None) -> CountyList:
    """The county list in force, with the file's hash as its version (empty when no file)."""
    if not path or not Path(path).exists():
        return CountyList(source=str(path or ""), version="none")
    p = Path(path)
    raw = p.read_bytes()
    try:
        doc = json.loads(raw)
        counties = doc.get("counties", [])
        if not isinstance(counties, list) or not all(isinstance(c, str) and c.strip() for c in counties):
            raise CountyFileError(f"county file {p}: 'counties' must be a list of unit names")
        for c in counties:
            check_text(c, 200, multiline=False)
        if len(set(counties)) != len(counties):
            raise CountyFileError(f"county file {p}: a county is listed twice")
        return CountyList(
            locality=str(doc.get("locality", "")), counties=counties, source=str(p),
            version=f"sha256:{hashlib.sha256(raw).hexdigest()[:12]}",
        )
    except (json.JSONDecodeError, AttributeError, ValidationError) as e:
        raise CountyFileError(f"county file {p} is not a county list: {e}") from None
    except ValueError as e:
        if isinstance(e, CountyFileError):
            raise
        raise CountyFileError(f"county file {p}: {e}") from None
