"""The demo's fan-out item (issue 13): `make run` files ONE sample item under a policy with
county fan-out on, so that transferring it in the console shows a parent with its child cases.

Only the demo does this; the built-in policy keeps fan-out off (README, "County fan-out"). The
item is the first sample whose responsible units name "各县市区…" (a county marker) and whose kind
fans out; its policy is the deployment's (POLICY_FILE) with `fanout.enabled` and a version
marked "+fanout-demo", so the case's recorded policy says why it differs.
"""

from __future__ import annotations

from activities.policy_source import load_policy
from domain.fanout import has_county_marker
from domain.model import CaseFiling
from domain.policy import Policy


def demo_fanout_policy(policy_file: str) -> Policy:
    policy = load_policy(policy_file or None)
    if policy.fanout.enabled:
        return policy
    return policy.model_copy(update={"fanout": policy.fanout.model_copy(update={"enabled": True}),
                                     "version": f"{policy.version}+fanout-demo"})


def pick_fanout_item(filings: list[CaseFiling], policy: Policy) -> CaseFiling | None:
    """The sample item that fans out in the demo (None when no sample names a county marker)."""
    for f in filings:
        if f.kind in policy.fanout.kinds and any(has_county_marker(u, policy) for u in f.responsible_units):
            return f
    return None
