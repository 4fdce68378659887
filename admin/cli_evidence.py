"""`casectl evidence …`: upload, list and download a case's evidence files (佐证材料).

    casectl evidence upload CASE FILE [FILE …]     streams each file (JPEG, PNG, PDF) to the console
    casectl evidence list CASE
    casectl evidence get CASE SHA256 [-o FILE]      SHA256: the digest, a prefix from `list`, or evidence:sha256:…

Uploads stream from disk (the file is never read whole into memory); downloads are
written as they arrive and their sha256 is checked against the one asked for.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

CHUNK = 1 << 20
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH = 0, 1, 2, 4
# casectl's module (`admin.cli`, or `__main__` under `python -m admin.cli`): its CliError,
# token and URL helpers; set by `configure`.
_cli: Any = None


def CliError(message: str, status: int = EXIT_ERROR, payload: dict[str, Any] | None = None) -> Exception:  # noqa: N802
    return _cli.CliError(message, status, payload)


def _token(args: argparse.Namespace) -> str:
    return _cli._token(args)


def _url(args: argparse.Namespace) -> str:
    return _cli._url(args)


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    _cli._out(args, data, text)


def _raise_for(r: httpx.Response) -> None:
    if r.status_code < 400:
        return
    raw = r.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or "message" not in body:
        body = {"error": f"HTTP {r.status_code}", "message": raw[:300].decode("utf-8", "replace")}
    msg = f"{body.get('error', r.status_code)}: {body.get('message', '')}"
    raise CliError(msg, EXIT_AUTH if r.status_code in (401, 403) else EXIT_ERROR, body)


def _client(args: argparse.Namespace) -> httpx.Client:
    return httpx.Client(base_url=_url(args), headers={"Authorization": f"Bearer {_token(args)}"},
                        timeout=httpx.Timeout(60.0, write=300.0, read=300.0))


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def _line(f: dict[str, Any]) -> str:
    return (f"{f['sha256'][:12]}  {f['media_type']:<16} {_size(f['size']):>9}  {f['original_name']}  "
            f"({f['uploader_user']}, {f['uploader_unit']}, {f['uploaded_at'][:19]})")


def cmd_upload(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    for p in paths:
        if not p.is_file():
            raise CliError(f"no such file: {p}", EXIT_USAGE)
    done: list[dict[str, Any]] = []
    with _client(args) as http:
        for p in paths:
            def chunks(path: Path = p) -> Iterator[bytes]:
                with path.open("rb") as fh:
                    while piece := fh.read(CHUNK):
                        yield piece

            try:
                r = http.post(f"/api/v1/cases/{quote(args.case, safe='')}/evidence", params={"filename": p.name},
                              content=chunks(), headers={"Content-Length": str(p.stat().st_size),
                                                         "Content-Type": "application/octet-stream"})
            except httpx.HTTPError as e:
                raise CliError(f"cannot reach the console at {_url(args)}: {e}") from None
            try:
                _raise_for(r)
            except _cli.CliError as e:
                e.message = f"{p.name}: not uploaded: {e.message}"
                if done:
                    e.message += f" ({len(done)} file(s) before it were uploaded)"
                raise
            done.append(r.json())
    lines = [f"{args.case}: {'uploaded' if f['created'] else 'already there'} {f['original_name']} "
             f"({f['media_type']}, {f['size']} bytes) {f['reference']}" for f in done]
    _out(args, {"case_no": args.case, "files": done}, "\n".join(lines))
    return EXIT_OK


def _list(args: argparse.Namespace, http: httpx.Client) -> dict[str, Any]:
    try:
        r = http.get(f"/api/v1/cases/{quote(args.case, safe='')}/evidence")
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach the console at {_url(args)}: {e}") from None
    _raise_for(r)
    return r.json()


def cmd_list(args: argparse.Namespace) -> int:
    with _client(args) as http:
        body = _list(args, http)
    lines = [_line(f) for f in body["files"]] + [f"{len(body['files'])} evidence file(s) on {args.case}"]
    _out(args, body, "\n".join(lines))
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    want = args.sha256.strip().lower().removeprefix("evidence:sha256:")
    if not want or any(c not in "0123456789abcdef" for c in want):
        raise CliError(f"not a sha256 (or a prefix of one): {args.sha256!r}", EXIT_USAGE)
    with _client(args) as http:
        files = _list(args, http)["files"]
        match = [f for f in files if f["sha256"].startswith(want)]
        if not match:
            raise CliError(f"case {args.case} has no evidence file {want}")
        if len(match) > 1:
            raise CliError(f"{want} is ambiguous on case {args.case}: "
                           + ", ".join(f["sha256"][:16] for f in match), EXIT_USAGE)
        f = match[0]
        out = Path(args.output) if args.output else Path(Path(f["original_name"]).name)
        if out.exists() and not args.force and str(out) != "-":
            raise CliError(f"{out} exists (use --force to overwrite, or -o FILE)", EXIT_USAGE)
        h = hashlib.sha256()
        tmp = out.with_name(out.name + ".part")
        try:
            with http.stream("GET", f"/api/v1/cases/{quote(args.case, safe='')}/evidence/{f['sha256']}") as r:
                _raise_for(r)
                with tmp.open("wb") as fh:
                    for piece in r.iter_bytes(CHUNK):
                        h.update(piece)
                        fh.write(piece)
        except httpx.HTTPError as e:
            tmp.unlink(missing_ok=True)
            raise CliError(f"download failed: {e}") from None
        except _cli.CliError:
            tmp.unlink(missing_ok=True)
            raise
        if h.hexdigest() != f["sha256"]:
            tmp.unlink(missing_ok=True)
            raise CliError(f"download of {f['original_name']} is corrupt: sha256 {h.hexdigest()} "
                           f"instead of {f['sha256']}", EXIT_ERROR)
        os.replace(tmp, out)
    _out(args, f | {"file": str(out)}, f"wrote {out} ({f['size']} bytes, sha256 {f['sha256']} verified)")
    return EXIT_OK


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli: Any) -> None:
    global _cli
    _cli = cli
    ev = sub.add_parser("evidence", help="evidence files of a case (佐证材料): upload, list, get")
    esub = ev.add_subparsers(dest="evidence_command", required=True, metavar="EVIDENCE_COMMAND")
    s = esub.add_parser("upload", parents=parents, help="upload files (JPEG, PNG, PDF) to a case")
    s.add_argument("case")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.set_defaults(func=cmd_upload)
    s = esub.add_parser("list", parents=parents, help="list a case's evidence files")
    s.add_argument("case")
    s.set_defaults(func=cmd_list)
    s = esub.add_parser("get", parents=parents, help="download one file (sha256 checked)")
    s.add_argument("case")
    s.add_argument("sha256", help="digest, a unique prefix of it, or evidence:sha256:…")
    s.add_argument("-o", "--output", help="file to write (default: the original name, in the current directory)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(func=cmd_get)

