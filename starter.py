"""Files cases: one from arguments, or a batch from a JSON file.

    python starter.py --file ../shared/domain/sample_cases.json
    python starter.py --case-no FB-99 --kind FEEDBACK_PROBLEM --title "…" --target "…" \
        --measure "…" --responsible-unit "蓝山县委、县政府" --lead-unit "市生态环境局" \
        --deadline "2027年6月30日"

Each case is reported as "filed" or "refused" with the reason. A batch files
every good record and names every bad one; a refused record files nothing.
Exit status: 0 when every record was handled (filed or refused), 1 with
--strict if any was refused, 2 on bad usage or when Temporal is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from temporalio.client import Client

from config import Settings, connect_client
from domain.deadlines import parse_deadline
from domain.enums import CaseKind, Role
from domain.errors import CaseError, InvalidFilingError
from domain.intake import filing_from_record, records_from_document
from domain.model import Actor, CaseFiling, Measure
from workflows.client import FilingOutcome, file_cases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="File inspection-rectification cases (立案).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="JSON file: a list of cases or an object with 'cases'")
    src.add_argument("--case-no", help="file one case with this number")
    p.add_argument("--kind", choices=[k.value for k in CaseKind], default=CaseKind.FEEDBACK_PROBLEM.value)
    p.add_argument("--title", default="")
    p.add_argument("--problem", default="")
    p.add_argument("--target", default="")
    p.add_argument("--measure", action="append", default=[], help="repeat for each measure")
    p.add_argument("--responsible-unit", action="append", default=[])
    p.add_argument("--lead-unit", action="append", default=[], help="first one organises verification")
    p.add_argument("--assisting-unit", action="append", default=[])
    p.add_argument("--deadline", default="", help="as written, e.g. 2027年6月30日 or 立行立改")
    p.add_argument("--inspection-round", default="")
    p.add_argument("--ladder-profile", default="canonical")
    p.add_argument("--filed-by", default="office-admin", help="user id of the filing office user")
    p.add_argument("--office-unit", default="整改办")
    p.add_argument("--strict", action="store_true", help="exit 1 if any record is refused")
    p.add_argument("--json", action="store_true", help="print outcomes as JSON lines")
    return p.parse_args(argv)


def filing_from_args(a: argparse.Namespace) -> CaseFiling:
    try:
        return CaseFiling(
            case_no=a.case_no,
            kind=CaseKind(a.kind),
            title=a.title,
            problem=a.problem,
            target=a.target,
            measures=[Measure(seq=i, text=t) for i, t in enumerate(a.measure, start=1)],
            responsible_units=a.responsible_unit,
            lead_supervising_units=a.lead_unit,
            assisting_units=a.assisting_unit,
            deadline=parse_deadline(a.deadline) if a.deadline else None,
            inspection_round=a.inspection_round,
            ladder_profile=a.ladder_profile,
        )
    except CaseError as e:
        raise InvalidFilingError(f"{a.case_no}: {e}") from None
    except ValueError as e:  # pydantic ValidationError
        raise InvalidFilingError(f"{a.case_no}: {e}") from None


def load_batch(path: Path) -> tuple[list[CaseFiling], list[FilingOutcome]]:
    """Parse every record; good ones become filings, bad ones refusals. Nothing is filed yet."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    filings, refused = [], []
    seen: set[str] = set()
    for record in records_from_document(doc):
        try:
            f = filing_from_record(record)
        except InvalidFilingError as e:
            ident = record.get("case_no") or record.get("case_id") or "?"
            refused.append(FilingOutcome(str(ident), False, str(e)))
            continue
        if f.case_no in seen:
            refused.append(FilingOutcome(f.case_no, False, f"case number {f.case_no} appears twice in the file"))
            continue
        seen.add(f.case_no)
        filings.append(f)
    return filings, refused


async def run(a: argparse.Namespace, client: Client | None = None) -> list[FilingOutcome]:
    settings = Settings.from_env()
    if a.file:
        filings, refused = load_batch(a.file)
    else:
        filings, refused = [filing_from_args(a)], []
    client = client or await connect_client(settings, identity="case-starter")
    actor = Actor(user_id=a.filed_by, role=Role.RECTIFICATION_OFFICE, unit=a.office_unit)
    outcomes = await file_cases(client, filings, actor, settings.task_queue)
    return outcomes + refused


def report(outcomes: list[FilingOutcome], as_json: bool) -> None:
    for o in outcomes:
        if as_json:
            print(json.dumps({"case_no": o.case_no, "filed": o.filed, "reason": o.reason}, ensure_ascii=False))
        else:
            print(f"{o.case_no}: filed" if o.filed else f"{o.case_no}: refused: {o.reason}")
    filed = sum(o.filed for o in outcomes)
    print(f"{filed} filed, {len(outcomes) - filed} refused", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        outcomes = asyncio.run(run(a))
    except InvalidFilingError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # connection failures from the Temporal client
        print(f"error: cannot reach Temporal: {e}", file=sys.stderr)
        return 2
    report(outcomes, a.json)
    return 1 if a.strict and not all(o.filed for o in outcomes) else 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
