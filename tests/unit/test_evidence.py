"""Evidence files, the pure part: type by content, names, references, who may see and add them."""

from __future__ import annotations

import pytest

from domain.enums import Role
from domain.evidence import (
    EvidenceError,
    check_media_type,
    check_sha256,
    check_size,
    clean_name,
    may_add_case_files,
    may_read_case_files,
    parse_reference,
    reference,
    referenced_files,
    sniff_media_type,
)
from domain.visibility import CaseFacts, HomeUnits, Reader

SHA = "ab" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


@pytest.mark.parametrize(("head", "media"), [(JPEG, "image/jpeg"), (PNG, "image/png"), (PDF, "application/pdf")])
def test_types_are_recognised_by_content(head: bytes, media: str) -> None:
    assert sniff_media_type(head) == media
    assert check_media_type(head, "x") == media


@pytest.mark.parametrize("head", [b"GIF89a\x01\x00", b"PK\x03\x04 zip or docx", b"<html><script>", b"MZ\x90\x00",
                                  b"\xff\xd8", b"%PDF", b"hello"])
def test_other_content_is_refused_naming_the_accepted_types(head: bytes) -> None:
    assert sniff_media_type(head) is None
    with pytest.raises(EvidenceError, match="JPEG, PNG and PDF") as e:
        check_media_type(head, "photo.jpg")
    assert "photo.jpg" in str(e.value)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(EvidenceError, match="empty"):
        check_media_type(b"", "empty.pdf")


def test_size_limit_names_the_limit() -> None:
    check_size(20 * 1024 * 1024, 20 * 1024 * 1024, "a.pdf")
    with pytest.raises(EvidenceError, match="EVIDENCE_MAX_BYTES") as e:
        check_size(20 * 1024 * 1024 + 1, 20 * 1024 * 1024, "a.pdf")
    assert "20,971,520" in str(e.value)


def test_names_keep_the_last_path_component_and_refuse_control_characters() -> None:
    assert clean_name("C:\\Users\\x\\现场照片 01.jpg") == "现场照片 01.jpg"
    assert clean_name("../../etc/passwd.pdf") == "passwd.pdf"
    for bad in ("a\x00b.pdf", "a\nb.pdf", "a\u202eb.pdf", "", "  ", "dir/", ".."):
        with pytest.raises(EvidenceError):
            clean_name(bad)
    with pytest.raises(EvidenceError, match="too long"):
        clean_name("x" * 201 + ".pdf")


def test_references_round_trip_and_other_references_are_free_text() -> None:
    ref = reference(SHA)
    assert ref == f"evidence:sha256:{SHA}"
    assert parse_reference(ref) == SHA
    assert parse_reference("doc:现场核查-001") is None
    assert check_sha256(ref) == SHA and check_sha256(SHA.upper()) == SHA
    assert referenced_files(["doc:1", ref, ref, "evidence:sha256:" + "cd" * 32]) == [SHA, "cd" * 32]
    for bad in ("evidence:sha256:xyz", "evidence:" + SHA, "Evidence:sha256:" + SHA.upper()):
        with pytest.raises(EvidenceError, match="malformed evidence reference"):
            parse_reference(bad)
    with pytest.raises(EvidenceError):
        check_sha256("not-a-digest")
    with pytest.raises(EvidenceError):
        reference("abc")


HOME = HomeUnits(office="整改办", discipline="纪委监委")
CASE = CaseFacts(stage="RECTIFYING", responsible_units=("县政府",), lead_supervising_units=("市生态环境局", "市林业局"),
                 assisting_units=("市水利局",))


def _reader(roles: list[Role], unit: str) -> Reader:
    return Reader(user_id="u", unit=unit, roles=tuple(roles))


@pytest.mark.parametrize(("roles", "unit", "read", "add"), [
    ([Role.RECTIFICATION_OFFICE], "整改办", True, True),
    ([Role.RECTIFICATION_OFFICE], "某县整改办", False, False),  # not the policy's office unit
    ([Role.AUDITOR], "审计组", True, False),
    ([Role.RESPONSIBLE_UNIT], "县政府", True, True),
    ([Role.RESPONSIBLE_UNIT], "另一个县", False, False),
    ([Role.LEAD_SUPERVISOR], "市林业局", True, True),
    ([Role.LEAD_SUPERVISOR], "省厅", False, False),
    ([Role.ASSIST_SUPERVISOR], "市水利局", True, True),
    ([Role.DISCIPLINE_COMMISSION], "纪委监委", False, False),  # no referral on this case
    ([Role.PUBLIC], "公众", False, False),
    ([Role.SYSTEM], "engine", False, False),
    ([], "县政府", False, False),
    ([Role.AUDITOR, Role.RESPONSIBLE_UNIT], "县政府", True, True),
    ([Role.AUDITOR, Role.RESPONSIBLE_UNIT], "另一个县", True, False),
])
def test_who_may_read_and_add_files(roles: list[Role], unit: str, read: bool, add: bool) -> None:
    assert may_read_case_files(_reader(roles, unit), CASE, HOME) is read
    assert may_add_case_files(_reader(roles, unit), CASE, HOME) is add


def test_the_discipline_commission_sees_files_of_referred_cases_and_the_public_never() -> None:
    referred = CaseFacts(stage="RECTIFYING", responsible_units=("县政府",), has_referrals=True)
    assert may_read_case_files(_reader([Role.DISCIPLINE_COMMISSION], "纪委监委"), referred, HOME)
    posting = CaseFacts(stage="PUBLIC_POSTING", responsible_units=("县政府",))
    assert not may_read_case_files(_reader([Role.PUBLIC], "公众"), posting, HOME)
