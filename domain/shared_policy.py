"""One Policy object per distinct policy in the process (issue 15: worker memory).

Every case carries its policy snapshot in its state (ladders, stage limits, follow-up rules:
~53 KiB as Python objects), and every cached or replayed case decodes its own copy from its
input or the policy activity's result, although a deployment has one policy or a few. Cases
whose snapshots are equal share one object instead. Sharing is safe because a Policy is frozen
(no field can be assigned) and no domain code changes a policy's contents; the cache keeps a
policy only while some case holds it (weak references). Pure: no I/O, nothing but memory.
"""

from __future__ import annotations

import threading
import weakref

from domain.policy import Policy

_LOCK = threading.Lock()  # workflow activations run on several threads
_SHARED: weakref.WeakValueDictionary[str, Policy] = weakref.WeakValueDictionary()
_ENABLED = True


def set_sharing(enabled: bool) -> None:
    """Off: every case keeps its own copy (WORKER_SHARE_POLICIES=false, to measure the lever)."""
    global _ENABLED
    _ENABLED = enabled


def shared_policy(policy: Policy) -> Policy:
    """The process's object equal to `policy` (the first one seen), or `policy` itself."""
    if not _ENABLED:
        return policy
    key = policy.model_dump_json()
    with _LOCK:
        kept = _SHARED.get(key)
        if kept is None:
            _SHARED[key] = policy
            return policy
        return kept


def shared_count() -> int:
    """How many distinct policies are held (for tests and the bench)."""
    return len(_SHARED)
