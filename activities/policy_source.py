"""Loads the deployment's policy: the built-in defaults, or a JSON file (POLICY_FILE)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from domain.policy import DEFAULT_POLICY, Policy


class PolicyFileError(ValueError):
    """The policy file cannot be read as a policy."""


def load_policy(path: str | Path | None) -> Policy:
    """The policy in force. A file gives a whole policy (missing keys take defaults)."""
    if not path:
        return DEFAULT_POLICY
    p = Path(path)
    try:
        return Policy.model_validate(json.loads(p.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise PolicyFileError(f"policy file {p} does not exist") from None
    except (json.JSONDecodeError, ValidationError) as e:
        raise PolicyFileError(f"policy file {p} is not a valid policy: {e}") from None


def policy_section(path: str | Path | None, key: str) -> dict:
    """POLICY_FILE's object under `key` (empty when absent), with the office and supervision units
    defaulting to the case policy's: the raw input of a programme's or a look-back's policy model."""
    case_policy = load_policy(path)
    raw: dict = {}
    if path:
        raw = dict(json.loads(Path(path).read_text(encoding="utf-8")).get(key) or {})
    raw.setdefault("office_unit", case_policy.office_unit)
    raw.setdefault("supervision_units", list(case_policy.supervision_units))
    return raw
