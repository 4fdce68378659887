"""Evidence files (佐证材料): what a file may be, how a case refers to one, who may see it.

Pure: no I/O. The bytes live outside the workflow history (PostgreSQL, see
`admin/evidence_store.py`); a case carries only references of the form
`evidence:sha256:<64 hex digits>`, next to the free-text references (`doc:…`) it
has always accepted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from domain.enums import Role
from domain.visibility import CaseFacts, HomeUnits, Part, Reader, parts_for

REFERENCE_PREFIX = "evidence:sha256:"
_REFERENCE = re.compile(r"^evidence:sha256:([0-9a-f]{64})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Accepted media types, recognised by their first bytes (magic numbers), never by the
# file name or the Content-Type the client claims.
MEDIA_TYPES: dict[str, str] = {
    "image/jpeg": "JPEG 照片",
    "image/png": "PNG 图片",
    "application/pdf": "PDF 文档",
}
# Shown inline (preview) in the console; everything else is served as an attachment.
INLINE_TYPES = frozenset({"image/jpeg", "image/png"})
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}
SNIFF_BYTES = 16  # how many leading bytes `sniff_media_type` needs
MAX_NAME_CHARS = 200


class EvidenceError(ValueError):
    """An evidence file or reference is unacceptable; the message names what is wrong."""


def sniff_media_type(head: bytes) -> str | None:
    """The media type of a file from its first bytes, or None when it is none of MEDIA_TYPES."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def check_media_type(head: bytes, name: str) -> str:
    """The media type of an upload from its first bytes; EvidenceError when it is not accepted."""
    if not head:
        raise EvidenceError(f"{name}: the file is empty (0 bytes)")
    media = sniff_media_type(head)
    if media is None:
        shown = head[:8].hex(" ")
        raise EvidenceError(
            f"{name}: not an accepted file type; accepted are JPEG, PNG and PDF, recognised by their content "
            f"(the file starts with bytes {shown})")
    return media


def check_size(size: int, limit: int, name: str) -> None:
    if size > limit:
        raise EvidenceError(f"{name}: file too large: more than {limit:,} bytes ({_mib(limit)}); "
                            f"the limit is EVIDENCE_MAX_BYTES")


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def clean_name(raw: str | None) -> str:
    """The original file name as stored: the last path component, NFC; EvidenceError when unusable.

    Control characters (NUL included) are refused rather than dropped: the name is shown to
    other users and written into downloads' Content-Disposition.
    """
    name = unicodedata.normalize("NFC", (raw or "").strip())
    name = re.split(r"[\\/]", name)[-1].strip()
    if not name or name in (".", ".."):
        raise EvidenceError("the file has no name (filename is required)")
    if bad := [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")]:
        raise EvidenceError(f"file name {name!r} contains control or invisible characters "
                            f"({', '.join(f'U+{ord(c):04X}' for c in bad[:3])})")
    if len(name) > MAX_NAME_CHARS:
        raise EvidenceError(f"file name too long: {len(name)} characters (at most {MAX_NAME_CHARS})")
    return name


def reference(sha256: str) -> str:
    """The reference a case carries for a stored file."""
    if not _SHA256.match(sha256):
        raise EvidenceError(f"not a sha256 hex digest: {sha256!r}")
    return REFERENCE_PREFIX + sha256


def parse_reference(ref: str) -> str | None:
    """The sha256 of an `evidence:…` reference; None for other references (`doc:…`, free text).

    Raises:
        EvidenceError: the reference starts with `evidence:` but is not `evidence:sha256:<64 hex>`.
    """
    ref = ref.strip()
    if not ref.lower().startswith("evidence:"):
        return None
    m = _REFERENCE.match(ref)
    if not m:
        raise EvidenceError(f"malformed evidence reference {ref!r}: expected evidence:sha256: followed by "
                            "64 lower-case hex digits")
    return m[1]


def check_sha256(raw: str) -> str:
    """A sha256 from a URL or command line (a bare digest or a full reference)."""
    s = raw.strip()
    sha = parse_reference(s) if s.lower().startswith("evidence:") else s.lower()
    if sha is None or not _SHA256.match(sha):
        raise EvidenceError(f"not a sha256 digest: {raw!r} (64 hex digits, or evidence:sha256:…)")
    return sha


def referenced_files(refs: Iterable[str]) -> list[str]:
    """The sha256 digests of the `evidence:` references among `refs`, in order, without repeats."""
    out: list[str] = []
    for r in refs:
        sha = parse_reference(r)
        if sha is not None and sha not in out:
            out.append(sha)
    return out


# ------------------------------------------------------------------ who may see and add files


def may_read_case_files(reader: Reader, facts: CaseFacts, home: HomeUnits) -> bool:
    """Whether a user may list and download a case's evidence files: the read rules of
    `domain.visibility` grant it the case's EVIDENCE part (the office and auditors on every
    case, a unit on the cases it works on or supervises, the discipline commission on cases
    with referrals; never the public). Deny by default."""
    return Part.EVIDENCE in parts_for(reader, facts, home)


def may_add_case_files(reader: Reader, facts: CaseFacts, home: HomeUnits) -> bool:
    """Whether a user may upload evidence to a case: it reads the case's files in an acting
    role (auditors only read)."""
    acting = Reader(user_id=reader.user_id, unit=reader.unit,
                    roles=tuple(r for r in reader.roles if r is not Role.AUDITOR))
    return may_read_case_files(acting, facts, home)
