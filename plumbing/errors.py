"""The errors the shared plumbing raises: the project's base error and the transport's failures.

They are named for the transport's first client, the reward model; served image generators raise the same ones. The
reward-model layer adds its own (`rewardmodel/errors.py`), all under `RewardModelError`, so a caller catches one base.
"""

from __future__ import annotations


class RewardModelError(Exception):
    """Base class of every error raised by the reward-model layer."""


class RewardServerError(RewardModelError):
    """The reward server stayed unreachable or kept failing (5xx, 429, timeouts) through the whole retry budget."""


class RewardTimeoutError(RewardServerError):
    """Every attempt at one request ran past the per-request timeout (or the total deadline)."""


class ResponseTooLargeError(RewardServerError):
    """A server answered more than the configured size (never read past it): the request abstains `too_large`."""


class RewardRequestError(RewardModelError):
    """The server rejected the request itself (a 4xx other than 408/429). Never retried: sending it again won't help."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code
