"""Domain errors: one base class, leaf names that state the condition.

The class name crosses the Temporal boundary as `ApplicationError.type`, so the
admin tool and tests match on it; renaming one is a breaking change.
"""

from __future__ import annotations


class CaseError(Exception):
    """Base class of every domain refusal."""


class InvalidTransitionError(CaseError):
    """The action is not allowed in the case's current stage."""


class NotAuthorizedError(CaseError):
    """The actor's role or unit may not take this action on this case."""


class MissingInputError(CaseError):
    """The action lacks a field it needs (a reason, a finding, criteria, ...)."""


class IncompleteCaseError(CaseError):
    """The case lacks what it needs before it can be transferred."""


class StaleStageError(CaseError):
    """The handler acted on an out-of-date view of the case."""


class DuplicateRequestError(CaseError):
    """This request id was already processed for the case."""


class InvalidDeadlineError(CaseError):
    """A requested due date is impossible (in the past, beyond policy limits)."""


class DeadlineParseError(CaseError):
    """A deadline text or spec is not a known form."""


class InvalidFilingError(CaseError):
    """A filing record cannot become a case."""


class RateLimitedError(CaseError):
    """The person has reached a limit (open objections, objections a day); the message says which."""
