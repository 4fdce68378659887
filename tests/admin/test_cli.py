"""casectl as a subprocess against the real console: every command, refusals and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from tests.admin.conftest import Console, act_via_api, file_via_api

pytestmark = pytest.mark.devserver


def ok(p, code: int = 0) -> str:
    assert p.returncode == code, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


async def test_admin_bootstrap_commands(console: Console) -> None:
    out = ok(await console.cli("admin", "create-user", "cli-office", "--unit", "整改办", "--roles",
                         "RECTIFICATION_OFFICE,AUDITOR", "--password-stdin", "--json", user=None,
                         stdin="a-long-password\n"))
    assert json.loads(out)["roles"] == ["RECTIFICATION_OFFICE", "AUDITOR"]
    p = await console.cli("admin", "create-user", "cli-office", "--unit", "整改办", "--roles", "RECTIFICATION_OFFICE",
                    "--password-stdin", user=None, stdin="a-long-password\n")
    assert p.returncode == 1 and "already exists" in p.stderr
    p = await console.cli("admin", "create-user", "cli-x", "--unit", "整改办", "--roles", "BOSS", "--password-stdin",
                    user=None, stdin="a-long-password\n")
    assert p.returncode == 1 and "unknown role 'BOSS'" in p.stderr
    p = await console.cli("admin", "create-user", "cli-y", "--unit", "整改办", "--roles", "AUDITOR", "--password-stdin",
                    user=None, stdin="short\n")
    assert p.returncode == 1 and "password too short" in p.stderr

    token = json.loads(ok(await console.cli("admin", "issue-token", "cli-office", "--json", user=None)))["token"]
    assert token.startswith("cet_")
    stored = await console.pool.fetchval("SELECT token_hash FROM api_token WHERE username = 'cli-office'")
    assert stored != token and len(stored) == 64, "only the sha256 of a token is stored"
    p = await console.cli("admin", "issue-token", "nobody", user=None)
    assert p.returncode == 1 and "no user 'nobody'" in p.stderr

    users = json.loads(ok(await console.cli("admin", "list-users", "--json", user=None)))
    assert {"cli-office", "office", "auditor"} <= {u["username"] for u in users}
    assert "cli-office" in ok(await console.cli("admin", "list-users", user=None))
    ok(await console.cli("admin", "unlock", "cli-office", user=None))
    p = await console.cli("admin", "unlock", "nobody", user=None)
    assert p.returncode == 1 and "no user" in p.stderr

    # login stores the token (and URL) for later commands; `me` then needs no --token.
    out = ok(await console.cli("login", "--token", token, user=None))
    assert "logged in as cli-office" in out
    me = json.loads(ok(await console.cli("me", "--json", user=None)))
    assert me["username"] == "cli-office" and me["unit"] == "整改办"
    p = await console.cli("admin", "revoke-tokens", "nobody", user=None)
    assert p.returncode == 1 and "no user 'nobody'" in p.stderr
    assert "revoked 1 API token(s) of cli-office" in ok(await console.cli("admin", "revoke-tokens", "cli-office",
                                                                         user=None))
    p = await console.cli("me", user=None)
    assert p.returncode == 4 and "revoked" in p.stderr, "a revoked token no longer works"
    saved = console.config_home / "casectl" / "token"
    assert saved.read_text().split("\n")[:2] == [token, console.url] and oct(saved.stat().st_mode)[-3:] == "600"


async def test_authentication_failures_exit_4(console: Console) -> None:
    p = await console.cli("me", user=None, extra_env={"CASECTL_TOKEN": "cet_not-a-token"})
    assert p.returncode == 4 and "Unauthorized" in p.stderr
    p = await console.cli("list", extra_env={"CASECTL_URL": "http://127.0.0.1:9"})
    assert p.returncode == 1 and "cannot reach the console" in p.stderr


async def test_file_show_act_and_refusals(console: Console, tmp_path: Path) -> None:
    record = console.case_record()
    case_no = record["case_no"]
    f = tmp_path / "case.json"
    f.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    assert f"{case_no}: filed" in ok(await console.cli("file", str(f)))
    p = await console.cli("file", str(f))
    assert p.returncode == 3 and "already filed" in p.stderr
    p = await console.cli("file", str(f), user="ru")
    assert p.returncode == 4 and "only the rectification office" in p.stderr

    out = ok(await console.cli("show", case_no))
    assert "建档立案 REGISTERED" in out and "TRANSFER" in out and "FILED" in out
    assert "TRANSFER" not in ok(await console.cli("show", case_no, user="ru")).split("actions you may take now:")[1].split(
        "ledger:")[0]
    p = await console.cli("show", "NO-SUCH-CASE")
    assert p.returncode == 1 and "no case NO-SUCH-CASE" in p.stderr

    out = ok(await console.cli("act", case_no, "TRANSFER", "--reason", "交办"))
    assert "已交办待签收 TRANSFERRED" in out
    # Refusals: the validator's reason, exit 3, nothing in the ledger.
    rows = await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no)
    # Another unit's case answers like a case that does not exist (read scoping); the refusal is recorded.
    p = await console.cli("act", case_no, "ACKNOWLEDGE", user="ru-other")
    assert p.returncode == 1 and f"no case {case_no}" in p.stderr
    assert await console.pool.fetchval(
        "SELECT error_type FROM refused_action WHERE case_no = $1 AND actor_user = 'ru-other' ORDER BY id DESC LIMIT 1",
        case_no) == "NotAuthorizedError"
    p = await console.cli("show", case_no, user="ru-other")
    assert p.returncode == 1 and f"no case {case_no}" in p.stderr
    p = await console.cli("act", case_no, "PRELIM_PASS", user="lead", extra_env={})
    assert p.returncode == 3 and "PRELIM_PASS is not allowed in stage TRANSFERRED" in p.stderr
    p = await console.cli("act", case_no, "ACKNOWLEDGE", user="office")
    assert p.returncode == 3 and "RECTIFICATION_OFFICE" in p.stderr
    assert await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no) == rows
    p = await console.cli("act", case_no, "ACKNOWLEDGE", user="auditor")
    assert p.returncode == 4 and "read-only" in p.stderr
    p = await console.cli("act", case_no, "FLY", user="ru")
    assert p.returncode == 2 and "unknown action" in p.stderr
    p = await console.cli("act", "NO-SUCH-CASE", "ACKNOWLEDGE", user="ru")
    assert p.returncode == 1 and "no case NO-SUCH-CASE" in p.stderr

    body = json.loads(ok(await console.cli("act", case_no, "ACKNOWLEDGE", "--json", "--request-id", "cli-ack-1", user="ru")))
    assert body["stage"] == "RECTIFYING" and body["due_date"] == record["deadline"]["due_date"]
    again = json.loads(ok(await console.cli("act", case_no, "ACKNOWLEDGE", "--json", "--request-id", "cli-ack-1",
                                      user="ru")))
    assert again["seq"] == body["seq"], "the same request id acts once"
    p = await console.cli("act", case_no, "REQUEST_EXTENSION", "--reason", "工程量大", user="ru")
    assert p.returncode == 1 and "期限 (due date) is required for REQUEST_EXTENSION" in p.stderr  # bad input
    ok(await console.cli("act", case_no, "COMPLETE_MEASURE", "--measure", "1", "--evidence", "doc:1", user="ru"))
    p = await console.cli("act", case_no, "COMPLETE_MEASURE", "--measure", "1", user="ru")
    assert p.returncode == 3
    shown = json.loads(ok(await console.cli("show", case_no, "--json", user="ru")))
    assert shown["measures_done"] == [1]
    assert "SUBMIT_COMPLETION" in [a["action"] for a in shown["allowed_actions"]]
    assert [e["event"] for e in shown["ledger"]][:2] == ["FILED", "TRANSFER"]


async def test_list_my_work_export_and_dashboard(console: Console, tmp_path: Path) -> None:
    old = console.case_record(due_days=-40)  # a plan date already past: overdue from the start
    case_no = await file_via_api(console, old)
    await act_via_api(console, "office", case_no, "TRANSFER")
    await act_via_api(console, "ru", case_no, "ACKNOWLEDGE")

    body = json.loads(ok(await console.cli("list", "--overdue", "--json", "--page-size", "500")))
    hit = next(c for c in body["cases"] if c["case_no"] == case_no)
    assert hit["overdue"] and hit["overdue_days"] > 0 and hit["stage"] == "RECTIFYING"
    assert all(c["overdue"] for c in body["cases"])
    out = ok(await console.cli("list", "--overdue", "--search", case_no))
    assert case_no in out and "逾期" in out and "1 cases" in out
    assert json.loads(ok(await console.cli("list", "--stage", "CLOSED", "--search", case_no, "--json")))["total"] == 0
    p = await console.cli("list", "--stage", "NOPE")
    assert p.returncode == 2

    mine = json.loads(ok(await console.cli("my-work", "--json", user="ru")))
    assert case_no in [c["case_no"] for c in mine["cases"]]
    assert case_no not in [c["case_no"] for c in json.loads(ok(await console.cli("my-work", "--json", user="lead")))["cases"]]
    assert "waiting for your unit" in ok(await console.cli("my-work", user="ru"))

    x = tmp_path / "t.xlsx"
    ok(await console.cli("export", "--format", "xlsx", "-o", str(x), "--overdue"))
    rows = list(load_workbook(x).active.iter_rows(values_only=True))
    assert case_no in [r[0] for r in rows[1:]]
    c = tmp_path / "t.csv"
    ok(await console.cli("export", "--format", "csv", "-o", str(c), "--search", case_no, user="auditor"))
    got = list(csv.reader(io.StringIO(c.read_text(encoding="utf-8-sig"))))
    assert got[0][0].startswith("案件编号") and got[1][0] == case_no

    d = json.loads(ok(await console.cli("dashboard", "--json")))
    assert d["total"] >= 1 and len(d["closures"]) == 12 and any(o["case_no"] == case_no for o in d["overdue"])
    assert "overdue:" in ok(await console.cli("dashboard"))


async def test_an_escalation_proposal_is_in_the_offices_work_and_a_supervision_office_confirms_it(
    console: Console,
) -> None:
    """The lead proposes 约谈 (casectl act PROPOSE_RUNG); office and 督查室 see the case in my-work; the
    督查室 confirms it with --proposal-id; a path-B draft waits for the office in my-work too."""
    case_no = await file_via_api(console, console.case_record())
    await act_via_api(console, "office", case_no, "TRANSFER")
    await act_via_api(console, "ru", case_no, "ACKNOWLEDGE")
    ok(await console.cli("act", case_no, "PROPOSE_RUNG", "--rung", "SUMMONS", "--reason", "多次调度无进展",
                         user="lead"))
    for user in ("office", "duchashi"):
        mine = json.loads(ok(await console.cli("my-work", "--json", user=user)))
        assert case_no in [c["case_no"] for c in mine["cases"]], user
    shown = json.loads(ok(await console.cli("show", case_no, "--json", user="duchashi")))
    assert "CONFIRM_ESCALATION" in [a["action"] for a in shown["allowed_actions"]]
    assert [(p["proposal_id"], p["status"]) for p in shown["escalation_proposals"]] == [("P1", "PENDING")]
    assert "proposal:     P1 SUMMONS" in ok(await console.cli("show", case_no, user="duchashi"))
    ok(await console.cli("act", case_no, "CONFIRM_ESCALATION", "--proposal-id", "P1", "--reason", "约谈县长",
                         user="duchashi"))
    shown = json.loads(ok(await console.cli("show", case_no, "--json", user="office")))
    assert "CONFIRM_ESCALATION" in [e["event"] for e in shown["ledger"]]
    assert shown["case"]["rung"] == "SUMMONS"
    ok(await console.cli("act", case_no, "REFER_ACCOUNTABILITY", "--referral-path", "FAKE_RECTIFICATION",
                         "--report-ref", "追责建议报告-5", "--reason", "虚假整改", user="lead"))
    mine = json.loads(ok(await console.cli("my-work", "--json", user="discipline")))
    assert case_no not in [c["case_no"] for c in mine["cases"]]  # a draft is not yet referred


async def test_import_json_and_xlsx_with_a_per_row_report(console: Console, tmp_path: Path) -> None:
    good = console.case_record()
    bad = dict(console.case_record(), kind="UNKNOWN_KIND")
    j = tmp_path / "batch.json"
    j.write_text(json.dumps({"cases": [good, bad, good]}, ensure_ascii=False), encoding="utf-8")
    body = json.loads(ok(await console.cli("import", str(j), "--json"), 3))  # refused rows: exit 3 (issue 13)
    assert body["filed"] == 1 and body["refused"] == 2
    assert [r["filed"] for r in body["rows"]] == [True, False, False]
    assert "kind" in body["rows"][1]["reason"] and "appears twice" in body["rows"][2]["reason"]
    p = await console.cli("import", str(j), "--strict")
    assert p.returncode == 3 and "already filed" in p.stdout

    wb = Workbook()
    ws = wb.active
    ws.append(["case_no", "kind", "title", "target", "measures", "responsible_units", "lead_supervising_units",
               "deadline"])
    no = good["case_no"] + "-XL"
    ws.append([no, "FEEDBACK_PROBLEM", "表格导入", "目标", "措施", "蓝山县人民政府", "市生态环境局", "2031年3月"])
    ws.append([no + "B", "FEEDBACK_PROBLEM", "坏时限", "目标", "措施", "蓝山县人民政府", "市生态环境局", "某天"])
    x = tmp_path / "batch.xlsx"
    wb.save(x)
    out = ok(await console.cli("import", str(x)), 3)
    assert f"{no}" in out and "1 filed, 1 refused" in out and "某天" in out
    p = await console.cli("import", str(tmp_path / "missing.json"))
    assert p.returncode == 1 and "no such file" in p.stderr
    p = await console.cli("import", str(j), user="auditor")
    assert p.returncode == 4
