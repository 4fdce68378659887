"""Guards for every pure-domain unit test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import domain.decide as decide_module


@pytest.fixture(autouse=True)
def decisions_leave_their_input_alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No decision may change the state it was given (issue 9, copy-on-write).

    `_Builder` shares the unchanged parts of the input state with its working copy instead of
    deep-copying it; a decision that changed a shared part in place would corrupt the
    workflow's current state. Every state a decision starts from is snapshotted and compared
    at the end of each test.
    """
    real = decide_module._working_copy
    seen: list[tuple[object, str]] = []

    def checked(state):  # type: ignore[no-untyped-def]
        seen.append((state, state.model_dump_json()))
        return real(state)

    monkeypatch.setattr(decide_module, "_working_copy", checked)
    yield
    changed = [s for s, before in seen if s.model_dump_json() != before]  # type: ignore[attr-defined]
    assert not changed, f"{len(changed)} decision(s) changed their input state in place"
