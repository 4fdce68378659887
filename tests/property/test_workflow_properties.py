"""The property-based sequences run on the real workflow, on the time-skipping test server.

Hypothesis generates the sequences against the pure domain (tests/property/invariants.py, every
invariant checked there too); each sequence is then played on a real case workflow with a real
worker and PostgreSQL: actions through the Update (refused ones recorded in refused_action),
clock jumps by skipping the server's time. The ledger in PostgreSQL and the workflow's state must
keep the same invariants. Few examples (shrinking is not possible across the async boundary, so
a failure prints the whole sequence); `make faults` runs more.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date, datetime

import asyncpg
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from activities.calendar_source import load_calendar
from domain.enums import Action, Role, Stage
from domain.model import ActionRequest, Actor, CaseState
from tests.harness import CaseDriver, case_worker
from tests.property.invariants import (
    CLOSED_STAGES,
    DEESCALATION_EVENTS,
    FULL_CLOSURE,
    REWORK_STAGES,
    UNITS,
    Step,
    Walk,
    actors,
    draw_case,
    draw_step,
    independently_authorised,
    make_filing,
)
from workflows import client as ops

EXAMPLES = 12 if os.environ.get("FAULTS") == "long" else 3
MAX_STEPS = 25
CALENDAR = load_calendar(None)


def _generate(start: datetime) -> list[tuple[object, list[Step]]]:
    """`EXAMPLES` random (case, steps) pairs, generated and checked against the pure domain."""
    out: list[tuple[object, list[Step]]] = []

    @settings(max_examples=EXAMPLES, phases=[Phase.generate], deadline=None, database=None)
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        kind, policy, long_term = data.draw(st.composite(lambda draw: draw_case(draw))())
        due_days = data.draw(st.integers(-30, 400))
        office = Actor(user_id="office", role=Role.RECTIFICATION_OFFICE, unit=policy.office_unit)
        filing = make_filing(kind, long_term, f"WP-{uuid.uuid4().hex[:8]}", start, due_days)
        walk = Walk.start(filing, policy, start, office, CALENDAR)
        cast = actors(UNITS, policy)
        steps: list[Step] = []
        for _ in range(data.draw(st.integers(5, MAX_STEPS))):
            if walk.state.stage is Stage.ARCHIVED:
                break
            step = data.draw(st.composite(lambda draw: draw_step(draw, walk.state, cast, walk.now))())
            walk.apply(step)
            steps.append(step)
        out.append(((filing, policy, office), steps))

    collect()
    return out


def _check_ledger(rows: list[asyncpg.Record], state: CaseState, log: list[str]) -> None:
    seqs = [r["seq"] for r in rows]
    assert seqs == list(range(1, state.seq + 1)), f"ledger gap or repeat {seqs} (state seq {state.seq}): {log}"
    stages: list[Stage] = [Stage.REGISTERED]
    suspended = False
    level = 0
    for r in rows:
        data = json.loads(r["data"]) if isinstance(r["data"], str) else (r["data"] or {})
        actor = Actor(user_id=r["actor_user"], role=Role(r["actor_role"]), unit=r["actor_unit"] or "")
        if r["request_id"]:
            assert independently_authorised(state, actor, Action(r["event"])), f"unauthorised row {dict(r)}: {log}"
        if r["to_stage"] is not None and r["event"] != "FILED":
            assert not suspended, f"stage changed while suspended: {dict(r)}: {log}"
            stages.append(Stage(r["to_stage"]))
            if stages[-1] in CLOSED_STAGES and stages[-2] not in CLOSED_STAGES:
                last = max(i for i, s in enumerate(stages) if s in REWORK_STAGES)
                path = stages[last + 1:]
                assert path[:-1] == FULL_CLOSURE or path[-3:] == [Stage.REPLY, Stage.DISCLOSURE, Stage.CLOSED], (
                    f"closure path {path}: {log}")
        if r["event"] == Action.SUSPEND.value:
            suspended = True
        elif r["event"] == Action.RESUME.value:
            suspended = False
        elif r["event"] == Action.VERIFY_PASS.value:
            crit = data.get("criteria") or {}
            for name in ("eco_restored", "pollution_eliminated", "public_satisfied"):
                assert crit.get(name, {}).get("met") and crit[name].get("evidence"), f"VERIFY_PASS without {name}"
        elif r["event"] == "DEADLINE_SET" and data.get("purpose") != "POSTING":
            due, start = date.fromisoformat(data["due_date"]), date.fromisoformat(data["explanation"]["start"])
            plan = state.filing.deadline.due_date if state.filing.deadline else None
            assert due >= start or due == plan, f"due date {due} before its start {start}: {log}"
        if r["event"] in ("ESCALATED", Action.APPLY_RUNG.value):
            assert data["level"] > level
            level = data["level"]
        elif r["event"] == Action.CONFIRM_ESCALATION.value:  # a confirmed proposal never lowers the level
            level = max(level, data["level"])
        elif r["event"] == "ESCALATION_RESUMED":  # a re-set deadline resumes at the rung reached
            level = data["level"]
        elif r["event"] in DEESCALATION_EVENTS:
            level = data.get("to_level", 0)
    assert level == state.escalation.level, f"escalation {state.escalation.level}, ledger says {level}: {log}"


async def test_random_sequences_on_the_workflow_keep_the_invariants(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    start = await ts_env.get_current_time()
    examples = _generate(start)
    assert len(examples) == EXAMPLES
    accepted_total = 0
    reached: list[str] = []
    async with case_worker(ts_env.client, pool, task_queue):
        for (filing, policy, _office), steps in examples:
            driver = CaseDriver(ts_env.client, pool, task_queue, filing)  # type: ignore[arg-type]
            assert (await driver.file(policy)).filed  # type: ignore[arg-type]
            log: list[str] = []
            refused: list[str] = []
            for i, step in enumerate(steps):
                log.append(step.describe())
                if step.action is None:
                    await ts_env.sleep(step.jump_seconds)
                    continue
                before = await driver.state()
                if before.stage is Stage.ARCHIVED:
                    break
                req = ActionRequest(action=step.action, actor=step.actor, request_id=f"{driver.case_no}-{i}",
                                    **step.fields)
                try:
                    await ops.act(ts_env.client, driver.case_no, req, pool=pool)
                except ops.ActionRefusedError:
                    refused.append(req.request_id)
                    continue
                accepted_total += 1
                after = await driver.state()
                if before.suspension is not None:
                    assert after.stage is before.stage, f"suspended case changed stage: {log}"
            state = await driver.state()
            rows = await driver.ledger()
            _check_ledger(rows, state, log)
            recorded = {r["request_id"] for r in rows}
            assert not recorded & set(refused), f"a refused request was recorded: {log}"
            n_refused = await pool.fetchval(
                "SELECT count(*) FROM refused_action WHERE case_no = $1 AND request_id = ANY($2)",
                driver.case_no, refused)
            assert n_refused == len(refused), "every refusal is kept in the side table"
            walk = Walk(state, [], state.filed_at, CALENDAR)
            walk.check_round_trip()
            reached.append(f"{state.stage} after {len(steps)} steps ({len(refused)} refused)")
    print("workflow property examples:", "; ".join(reached))
    assert accepted_total > 0, "the sequences moved no case"
