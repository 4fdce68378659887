"""Timeline, rendering and the replay command on histories recorded from the dev server (tests/replay)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from temporalio.api.enums.v1 import EventType

from audit.history import HistoryError, order_runs, parse_history, sha256_text
from audit.timeline import TimelineEntry, build_timeline, render_html, render_pdf, render_text
from domain.enums import RUNG_LABELS_ZH, RUNG_ORDER, Rung

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "replay" / "histories"


def _run(name: str):
    return parse_history((HISTORIES / f"{name}.json").read_text(encoding="utf-8"), "file", name)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_recorded_file_parses_with_its_case_run_and_fingerprint() -> None:
    text = (HISTORIES / "happy_path.json").read_text(encoding="utf-8")
    run = parse_history(text, "file")
    assert run.case_no == "REPLAY-happy_path" and run.workflow_id == "case-REPLAY-happy_path"
    assert run.run_id == run.history.run_id and run.status == "RUNNING"
    assert run.sha256 == sha256_text(text), "the fingerprint is over the text as stored"
    with pytest.raises(HistoryError, match="events"):
        parse_history('{"cases": []}', "file")


def test_continue_as_new_runs_are_put_in_execution_order() -> None:
    runs = [_run(f"continue_as_new_run{i}") for i in (3, 1, 4, 2)]
    ordered = order_runs(runs)
    assert [r.origin for r in ordered] == [f"continue_as_new_run{i}" for i in (1, 2, 3, 4)]
    assert [r.status for r in ordered] == ["CONTINUED_AS_NEW"] * 3 + ["RUNNING"]
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert b.continued_from == a.run_id


def test_the_escalation_timeline_shows_every_rung_with_the_timer_that_fired_it() -> None:
    entries = build_timeline(_run("escalation_to_last_rung"))
    rungs = [e for e in entries if e.label_en == "ESCALATED"]
    assert [e.data["rung"] for e in rungs] == [r.value for r in RUNG_ORDER]
    for e in rungs:
        assert RUNG_LABELS_ZH[Rung(e.data["rung"])] in e.label_zh
        assert e.actor_role_zh == "系统" and "定时器" in e.detail and "逾期" in e.reason
    timers = [e for e in entries if e.kind == "TIMER"]
    assert len(timers) >= len(rungs)
    for e in rungs:  # the timer that fired precedes its rung
        assert any(t.event_id < e.event_id and t.at <= e.at for t in timers)
    deadlines = [e for e in entries if e.kind == "DEADLINE"]
    assert deadlines and all("期限" in e.detail and "日历版本" in e.detail for e in deadlines)
    assert any("督办阶梯 函告" in e.detail for e in deadlines)
    assert any(e.label_en == "REFERRAL_OPENED" for e in entries)
    notices = [e for e in entries if e.kind == "NOTICE"]
    assert any("纪委监委" in e.detail for e in notices)


def test_every_accepted_action_appears_with_actor_reason_and_outcome() -> None:
    run = _run("objection")
    accepted = [e for e in run.history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    entries = build_timeline(run)
    actions = [e for e in entries if "request_id" in e.data]
    assert len(actions) == len(accepted) > 0
    assert all(e.actor_user and e.actor_role_zh and e.outcome.startswith("成功") and e.seq for e in actions)
    objections = [e for e in actions if e.label_en == "OBJECT"]
    assert [e.reason for e in objections] == ["河道仍有异味", "夜间偷排"]
    assert all(e.label_zh == "公示异议" and e.actor_role_zh == "公众" for e in objections)
    upheld = next(e for e in actions if e.label_en == "UPHOLD_OBJECTION")
    assert upheld.reason == "核实存在偷排" and upheld.actor_user == "office-zhang" and "→" in upheld.detail
    seqs = [e.seq for e in entries if e.seq is not None and e.kind != "NOTICE"]
    assert seqs == sorted(seqs), "entries come in ledger order"


def test_html_is_a_standalone_document_and_escapes_what_people_typed() -> None:
    run = _run("reopen")
    entries = build_timeline(run)
    doc = render_html(run.case_no, entries, [run])
    assert doc.startswith("<!DOCTYPE html>") and 'lang="zh-CN"' in doc and "回头看重新整改" in doc
    assert run.sha256 in doc
    evil = entries[0].model_copy(update={"reason": "<script>alert(1)</script>"})
    frag = render_html(run.case_no, [evil], fragment=True)
    assert frag.startswith('<table class="audit-timeline"') and "<script>" not in frag and "&lt;script&gt;" in frag


def test_the_pdf_holds_the_chinese_text() -> None:
    run = _run("escalation_to_last_rung")
    entries = build_timeline(run)
    pdf = render_pdf(run.case_no, entries, [run])
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for word in ("审计时间线", "函告", "移交问责", "定时器到期", "蓝山县人民政府"):
        assert word in text, word
    assert "REPLAY-escalation_to_last_rung" in text.replace("\n", "")


def test_text_timeline_names_actor_reason_and_ledger_seq() -> None:
    run = _run("objection")
    text = render_text(run.case_no, build_timeline(run))
    assert "公示异议 (OBJECT)" in text and "理由 reason: 夜间偷排" in text and "台账#" in text
    assert "公众 / citizen-1" in text


def test_replay_command_on_files_reports_each_history_and_exits_zero() -> None:
    out = _cli("replay", "--file", str(HISTORIES), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] and doc["histories"] == len(list(HISTORIES.glob("*.json")))
    assert all(r["ok"] for r in doc["runs"]) and doc["histories_per_second"] > 0


def test_replay_command_reports_a_doctored_history_with_its_first_diverging_event(tmp_path: Path) -> None:
    """A history whose recorded command differs from what the code does: non-zero exit, event named."""
    raw = json.loads((HISTORIES / "happy_path.json").read_text(encoding="utf-8"))
    target = next(e for e in raw["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
                  and e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "compute_deadline")
    target["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "compute_deadline_v2"
    bad = tmp_path / "doctored.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    out = _cli("replay", "--file", str(bad), "--file", str(HISTORIES / "objection.json"), "--no-progress")
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    failed = next(line for line in lines if line.startswith("NONDETERMINISM"))
    assert "REPLAY-happy_path" in failed and f"first diverging event: {target['eventId']} " in failed
    assert any(line.startswith("OK") and "REPLAY-objection" in line for line in lines)
    assert "1 OK, 1 failed" in lines[-1]


def test_bad_input_to_the_commands_is_named(tmp_path: Path) -> None:
    assert _cli("replay").returncode == 2
    missing = _cli("replay", "--file", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    (tmp_path / "x.json").write_text('{"hello": 1}')
    notjson = _cli("replay", "--file", str(tmp_path / "x.json"))
    assert notjson.returncode == 2 and "not a workflow history" in notjson.stderr


def test_timeline_command_writes_html_and_pdf_from_a_file(tmp_path: Path) -> None:
    for suffix in ("html", "pdf"):
        out_file = tmp_path / f"t.{suffix}"
        out = _cli("timeline", "--file", str(HISTORIES / "reopen.json"), "-o", str(out_file))
        assert out.returncode == 0, out.stderr
        data = out_file.read_bytes()
        assert data.startswith(b"%PDF" if suffix == "pdf" else b"<!DOCTYPE html>")


def test_timeline_entries_serialise_for_the_web_console() -> None:
    e = build_timeline(_run("happy_path"))[0]
    assert isinstance(e, TimelineEntry)
    again = TimelineEntry.model_validate_json(e.model_dump_json())
    assert again == e and e.kind_zh


def test_casectl_mounts_the_audit_commands_under_its_own_parser() -> None:
    """The contract with the admin tool: configure(parser) adds subcommands with a sync func(args) -> int."""
    import argparse

    from audit.cli import configure

    casectl = argparse.ArgumentParser(prog="casectl")
    sub = casectl.add_subparsers(dest="command", required=True)
    configure(sub.add_parser("audit"))
    args = casectl.parse_args(["audit", "replay", "--file", str(HISTORIES / "objection.json"), "--json"])
    assert args.func(args) == 0
    for name in ("timeline", "verify", "archive"):
        assert callable(casectl.parse_args(["audit", name] + (["X"] if name == "timeline" else [])).func)
    with pytest.raises(SystemExit):
        casectl.parse_args(["audit"])


def test_a_case_archived_a_year_after_closure_reads_to_its_end() -> None:
    run = _run("archived_after_lookback")
    assert run.status == "COMPLETED" and run.close_time - run.start_time > timedelta(days=365)
    entries = build_timeline(run)
    labels = [e.label_en for e in entries]
    assert labels.index("RECORD_FILING") < labels.index("ARCHIVED") < labels.index("WORKFLOW_COMPLETED")
    archived = entries[labels.index("ARCHIVED")]
    assert archived.actor_role_zh == "系统" and "定时器" in archived.detail and "回头看期满" in archived.reason
    assert "已归档(ARCHIVED)" in entries[-1].detail


def test_progress_goes_to_stderr_and_results_to_stdout_when_asked() -> None:
    out = _cli("replay", "--file", str(HISTORIES), "--progress")
    assert out.returncode == 0, out.stderr
    assert "[" in out.stderr and f"{len(list(HISTORIES.glob('*.json')))}/" in out.stderr and "#" in out.stderr
    assert not any(line.startswith("OK") for line in out.stdout.splitlines()), "only failures + summary"
    assert out.stdout.splitlines()[-1].startswith("replayed ")
