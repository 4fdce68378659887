"""The auditors' commands: `casectl audit X` ≡ `python -m audit.cli X`.

    python -m audit.cli replay CASE | --all | --since DATE | --file history.json [--sandboxed] [--json]
    python -m audit.cli timeline CASE [--format text|html|pdf|json] [-o FILE]
    python -m audit.cli verify [CASE ...] [--chain-only] [--json]
    python -m audit.cli archive [--once] [--full]

Settings come from the engine's environment (DATABASE_URL, TEMPORAL_ADDRESS, ...).
Everything but `archive` only reads. Exit status: 0 all good, 1 a failure was found
(nondeterminism, chain break, ...), 2 bad usage or nothing to work on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input: reported with what is wrong, exit status 2."""


# ------------------------------------------------------------------ connections


@asynccontextmanager
async def _connections(need_db: bool = True, need_temporal: bool = True, temporal_optional: bool = True):
    """(pool, client) from the engine's settings; Temporal may be unreachable if optional."""
    import asyncpg

    from config import Settings, connect_client

    settings = Settings.from_env()
    pool = None
    client = None
    try:
        if need_db:
            try:
                pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
            except (OSError, asyncpg.PostgresError) as e:
                raise UsageError(f"cannot connect to PostgreSQL (DATABASE_URL): {e}") from None
        if need_temporal:
            try:
                client = await asyncio.wait_for(
                    connect_client(settings, identity=f"case-audit@{os.getpid()}"), timeout=15
                )
            except Exception as e:  # connection refused, TLS, timeout
                if not temporal_optional:
                    raise UsageError(f"cannot connect to Temporal at {settings.temporal_address}: {e}") from None
                print(f"note: Temporal at {settings.temporal_address} unreachable ({e}); using the archive only",
                      file=sys.stderr)
        yield pool, client
    finally:
        if pool is not None:
            await pool.close()


# ------------------------------------------------------------------ progress


class Progress:
    """A progress bar on stderr (TTY or --progress), else nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.done = total, enabled, 0

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _progress_enabled(args: argparse.Namespace) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return sys.stderr.isatty() and not args.json


# ------------------------------------------------------------------ replay


def _parse_since(text: str) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date (YYYY-MM-DD) or ISO timestamp") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(path.glob("*.json"))
        elif path.is_file():
            out.append(path)
        else:
            raise UsageError(f"--file {p}: no such file or directory")
    if not out:
        raise UsageError("--file: no *.json history found")
    return out


async def _runs_from_files(paths: list[Path]):
    from audit.history import HistoryError, parse_history

    runs = []
    for p in paths:
        try:
            runs.append(parse_history(p.read_text(encoding="utf-8"), source="file", origin=str(p)))
        except (HistoryError, UnicodeDecodeError) as e:
            raise UsageError(f"{p}: {e}") from None
    return runs


async def _archive_ids(pool, since: datetime | None) -> list[str]:
    if since is None:
        rows = await pool.fetch("SELECT run_id FROM history_archive ORDER BY case_no, start_time")
    else:
        rows = await pool.fetch(
            "SELECT run_id FROM history_archive WHERE close_time >= $1 ORDER BY case_no, start_time", since
        )
    return [r["run_id"] for r in rows]


async def _temporal_runs(client, since: datetime | None, skip: set[str]) -> list[tuple[str, str]]:
    from audit.archive import rfc3339
    from workflows.contracts import WORKFLOW_NAME

    if client is None:
        return []
    q = f"WorkflowType = '{WORKFLOW_NAME}'"
    if since is not None:
        q += f" AND CloseTime >= '{rfc3339(since)}'"
    out = []
    try:
        async for wf in client.list_workflows(q):
            if wf.run_id not in skip:
                out.append((wf.id, wf.run_id))
    except Exception as e:  # a server without visibility (e.g. the Java test server)
        print(f"note: Temporal visibility unavailable ({e}); replaying archived runs only", file=sys.stderr)
    return out


async def _replay(args: argparse.Namespace) -> int:
    from audit.archive import fetch_run, load_histories, run_from_row
    from audit.history import HistoryError, RunHistory
    from audit.replay import ReplayOutcome, default_jobs, replay_parallel, replay_runs

    chosen = sum(bool(x) for x in (args.case, args.all, args.since, args.file))
    if args.jobs < 0:
        raise UsageError(f"--jobs {args.jobs}: give a number of processes (0 = one per core for many histories)")
    jobs = 1
    if chosen != 1:
        raise UsageError("give exactly one of: CASE, --all, --since DATE, --file PATH")
    problems: list[str] = []
    outcomes: list[ReplayOutcome] = []

    async def go(runs, total: int) -> Any:
        bar = Progress(total, _progress_enabled(args))

        def on_result(o: ReplayOutcome) -> None:
            outcomes.append(o)
            bar.step(o.case_no)
            if not args.json and (not o.ok or not bar.enabled):
                if bar.enabled:
                    sys.stderr.write("\n")
                print(o.line(), flush=True)

        try:
            if jobs > 1:  # `runs` are RunSources: the children load and replay them
                summary, probs = await replay_parallel(runs, jobs=jobs, sandboxed=args.sandboxed,
                                                       on_result=on_result)
                problems.extend(probs)
                return summary
            return await replay_runs(runs, sandboxed=args.sandboxed, on_result=on_result)
        finally:
            bar.close()

    if args.file:
        runs = await _runs_from_files(_files(args.file))
        summary = await go(runs, len(runs))
    else:
        async with _connections(need_db=True, need_temporal=args.source != "archive") as (pool, client):
            if args.source == "temporal":
                pool_for_load = None
            else:
                pool_for_load = pool
            if args.case:
                runs = []
                for case_no in args.case:
                    try:
                        found = await load_histories(pool_for_load, client, case_no)
                    except HistoryError as e:
                        problems.append(f"case {case_no}: {e}")
                        continue
                    if not found:
                        problems.append(f"case {case_no}: no history in the archive or on the server")
                    runs += found
                summary = await go(runs, len(runs))
            else:
                since = _parse_since(args.since) if args.since else None
                ids = await _archive_ids(pool, since) if pool_for_load is not None else []
                extra = await _temporal_runs(client, since, set(ids))
                total = len(ids) + len(extra)
                jobs = args.jobs or default_jobs(total)

                async def sources() -> AsyncIterator[dict]:
                    for rid in ids:
                        row = await pool.fetchrow("SELECT * FROM history_archive WHERE run_id = $1", rid)
                        yield {"kind": "archive", **dict(row)}
                    for wid, rid in extra:
                        run = await fetch_run(client, wid, rid)
                        if run is not None:
                            yield {"kind": "text", "history_json": run.json_text, "source": "temporal",
                                   "origin": "temporal", "workflow_id": wid}

                async def stream() -> AsyncIterator[RunHistory]:
                    for rid in ids:
                        row = await pool.fetchrow("SELECT * FROM history_archive WHERE run_id = $1", rid)
                        try:
                            yield run_from_row(row)
                        except HistoryError as e:
                            problems.append(str(e))
                    for wid, rid in extra:
                        run = await fetch_run(client, wid, rid)
                        if run is not None:
                            yield run

                summary = await go(sources() if jobs > 1 else stream(), total)
    hps, eps = summary.rates()
    runner = "sandboxed" if args.sandboxed else "unsandboxed"
    if args.json:
        print(json.dumps({
            "ok": not summary.failures and not problems and bool(summary.outcomes),
            "runs": [o.as_dict() for o in summary.outcomes], "problems": problems,
            "histories": len(summary.outcomes), "events": summary.events, "seconds": round(summary.seconds, 3),
            "histories_per_second": round(hps, 1), "events_per_second": round(eps, 1), "runner": runner,
            "processes": jobs,
        }, ensure_ascii=False, indent=2))
    else:
        for p in problems:
            print(f"ERROR {p}")
        cases = len({o.case_no for o in summary.outcomes})
        print(f"replayed {len(summary.outcomes)} histories of {cases} case(s), {summary.events} events: "
              f"{len(summary.outcomes) - len(summary.failures)} OK, {len(summary.failures)} failed "
              f"({runner} runner, {jobs} process{'es' if jobs > 1 else ''}, {hps:.1f} histories/s, "
              f"{eps:.0f} events/s)")
    if problems or summary.failures:
        return EXIT_FAILED
    if not summary.outcomes:
        print("nothing replayed: no history found", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


# ------------------------------------------------------------------ timeline


async def _evidence_files(pool: Any, case_no: str) -> list[Any]:
    """The case's evidence files (name, type, size, sha256, uploader) from the evidence store."""
    from admin.evidence_store import list_files

    return await list_files(pool, case_no)


async def _timeline(args: argparse.Namespace) -> int:
    from audit.archive import load_histories
    from audit.history import HistoryError
    from audit.timeline import build_timeline_from_runs, render_html, render_pdf, render_text

    evidence_files: list[Any] = []
    if args.file:
        runs = await _runs_from_files(_files(args.file))
        cases = {r.case_no for r in runs}
        if args.case and args.case not in cases:
            raise UsageError(f"the files hold case(s) {', '.join(sorted(cases))}, not {args.case}")
        if len(cases) != 1:
            raise UsageError(f"the files hold several cases ({', '.join(sorted(cases))}); give one case's runs")
        case_no = cases.pop()
        from audit.history import order_runs

        runs = order_runs(runs)
    else:
        if not args.case:
            raise UsageError("give a case number (or --file)")
        case_no = args.case
        async with _connections(need_temporal=not args.archive_only) as (pool, client):
            try:
                runs = await load_histories(pool, client, case_no)
            except HistoryError as e:
                print(f"ERROR case {case_no}: {e}", file=sys.stderr)
                return EXIT_FAILED
            evidence_files = await _evidence_files(pool, case_no)
        if not runs:
            print(f"ERROR case {case_no}: no history in the archive or on the server", file=sys.stderr)
            return EXIT_FAILED
    entries = build_timeline_from_runs(runs)
    from audit.timeline import evidence_rows

    evidence = evidence_rows(evidence_files, entries)
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output else "text")
    if fmt in ("txt",):
        fmt = "text"
    if fmt == "pdf":
        data: bytes = render_pdf(case_no, entries, runs, evidence=evidence)
    elif fmt in ("html", "htm"):
        data = render_html(case_no, entries, runs, evidence=evidence).encode("utf-8")
    elif fmt == "json":
        data = json.dumps({"case_no": case_no,
                           "runs": [{"run_id": r.run_id, "status": r.status, "source": r.source,
                                     "sha256": r.sha256, "events": len(r.history.events)} for r in runs],
                           "entries": [e.model_dump(mode="json") for e in entries],
                           "evidence": [r.model_dump(mode="json") for r in evidence]},
                          ensure_ascii=False, indent=2).encode("utf-8")
    elif fmt == "text":
        data = render_text(case_no, entries, evidence).encode("utf-8")
    else:
        raise UsageError(f"unknown format {fmt!r} (text, html, pdf, json)")
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output}: {len(entries)} entries from {len(runs)} run(s) "
              f"({', '.join(sorted({r.source for r in runs}))})", file=sys.stderr)
    else:
        if fmt == "pdf" and sys.stdout.isatty():
            raise UsageError("PDF to a terminal: give -o FILE")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


# ------------------------------------------------------------------ verify


async def _verify(args: argparse.Namespace) -> int:
    from audit.verify import case_numbers, verify_case

    async with _connections(need_temporal=not args.chain_only) as (pool, client):
        cases = args.case or await case_numbers(pool)
        if not cases:
            print("no cases in the ledger", file=sys.stderr)
            return EXIT_USAGE
        bar = Progress(len(cases), _progress_enabled(args))
        verdicts = []
        for case_no in cases:
            v = await verify_case(pool, client, case_no, with_history=not args.chain_only)
            verdicts.append(v)
            bar.step(case_no)
            if not args.json and (not v.ok or not bar.enabled):
                if bar.enabled:
                    sys.stderr.write("\n")
                if v.ok:
                    what = "chain" + (f" + history ({v.runs} run(s))" if v.history_checked else "")
                    legacy = f", {v.legacy_rows} pre-chain rows" if v.legacy_rows else ""
                    print(f"OK     case {case_no}: {v.rows} rows{legacy}, {what} verified")
                else:
                    print(f"BROKEN case {case_no}: {len(v.findings)} finding(s)")
                    for f in v.findings:
                        print(f"  {f}")
        bar.close()
    bad = [v for v in verdicts if not v.ok]
    if args.json:
        print(json.dumps({"ok": not bad, "cases": [v.as_dict() for v in verdicts]}, ensure_ascii=False, indent=2))
    else:
        print(f"verified {len(verdicts)} case(s): {len(verdicts) - len(bad)} intact, {len(bad)} with findings")
    return EXIT_FAILED if bad else EXIT_OK


# ------------------------------------------------------------------ archive


async def _archive(args: argparse.Namespace) -> int:
    from audit.archive import archive_pass, run_archiver

    async with _connections(temporal_optional=False) as (pool, client):
        overlap = timedelta(minutes=args.overlap_minutes)
        if args.once:
            p = await archive_pass(client, pool, overlap=overlap, full=args.full)
            if p.skipped_locked:
                print("another archiver pass is running; nothing done", file=sys.stderr)
                return EXIT_OK
            for f in p.failed:
                print(f"ERROR {f}")
            print(f"listed {p.listed} closed run(s): {p.archived} archived, {p.already} already archived, "
                  f"{len(p.failed)} failed; watermark {p.watermark.isoformat() if p.watermark else '-'}")
            return EXIT_FAILED if p.failed else EXIT_OK
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.full:
            await archive_pass(client, pool, overlap=overlap, full=True)
        await run_archiver(client, pool, stop, args.poll_seconds, overlap)
    return EXIT_OK


# ------------------------------------------------------------------ wiring


def _sync(coro_fn):
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(coro_fn(args))
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar on stderr (default: only when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the audit subcommands to `parser` (casectl: `casectl audit ...`)."""
    sub = parser.add_subparsers(dest="audit_command", metavar="{replay,timeline,verify,archive}", required=True)

    p = sub.add_parser("replay", help="replay histories against the current workflow code",
                       description="Replay case histories (archive, Temporal or files) against the engine's code "
                                   "with the production data converter; report OK or the first diverging event.")
    p.add_argument("case", nargs="*", metavar="CASE", help="case number(s)")
    p.add_argument("--all", action="store_true", help="every run in the archive and on the server")
    p.add_argument("--since", metavar="DATE", help="runs that ended on/after DATE (YYYY-MM-DD or ISO time)")
    p.add_argument("--file", action="append", metavar="PATH",
                   help="history JSON exported by `temporal workflow show --output json` (or a directory of them)")
    p.add_argument("--source", choices=("auto", "archive", "temporal"), default="auto",
                   help="where histories come from (auto: archive first, Temporal as fallback)")
    p.add_argument("--sandboxed", action="store_true", help="use the workflow sandbox (slower; CI does both)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="processes replaying --all/--since in parallel (default 0: one per core from 100 "
                        "histories on, else 1)")
    _output_flags(p)
    p.set_defaults(func=_sync(_replay))

    p = sub.add_parser("timeline", help="the case's account derived from its workflow history",
                       description="A readable timeline (Chinese labels) of one case from its workflow history: "
                                   "actions with actor and reason, deadlines, timers, escalations, notices.")
    p.add_argument("case", nargs="?", metavar="CASE")
    p.add_argument("--file", action="append", metavar="PATH", help="history JSON file(s) of one case instead")
    p.add_argument("--format", choices=("text", "html", "pdf", "json"), help="default: from -o's suffix, else text")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--archive-only", action="store_true", help="do not ask Temporal")
    p.set_defaults(func=_sync(_timeline))

    p = sub.add_parser("verify", help="check the ledger's hash chains and cross-check it with the histories",
                       description="Verify each case's ledger hash chain and cross-check ledger against workflow "
                                   "history; every break is reported with case and seq. Exit 1 on any finding.")
    p.add_argument("case", nargs="*", metavar="CASE", help="case number(s) (default: every case in the ledger)")
    p.add_argument("--chain-only", action="store_true", help="skip the cross-check against histories")
    _output_flags(p)
    p.set_defaults(func=_sync(_verify))

    p = sub.add_parser("archive", help="archive histories of ended runs (catch-up; the worker does it continuously)",
                       description="Store the full history of every ended Case workflow run in PostgreSQL "
                                   "(idempotent). Writes only the history_archive and archive_checkpoint tables.")
    p.add_argument("--once", action="store_true", help="one catch-up pass, then exit")
    p.add_argument("--full", action="store_true", help="ignore the watermark: list every closed run")
    p.add_argument("--overlap-minutes", type=float, default=10.0, help="re-scan this far behind the watermark")
    p.add_argument("--poll-seconds", type=float, default=60.0, help="interval when not --once")
    p.set_defaults(func=_sync(_archive))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.cli", description=__doc__.splitlines()[0])
    configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
