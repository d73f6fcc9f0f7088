"""Typed errors at the reward-model boundary.

Every failure that crosses this boundary is one of these (or an `Abstention` value): callers never see a bare
`Exception`, and nothing here is ever turned into a made-up score.
"""

from __future__ import annotations


class RewardModelError(Exception):
    """Base class of every error raised by the reward-model layer."""


class CritiqueParseError(RewardModelError, ValueError):
    """A critique text could not be turned into a typed object. Holds the raw text for inspection."""

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(message)
        self.raw_text = raw_text


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


class InvalidImageError(RewardModelError, ValueError):
    """An image input is missing, unreadable or not an image."""


class ImageTooLargeError(InvalidImageError):
    """An image has more pixels than the configured limit (a decompression bomb, or simply too large to judge)."""


class NoActiveAspectsError(RewardModelError, ValueError):
    """A critique has no scored aspect that the chosen reward policy uses, so no reward can be computed."""


class PromptFormatError(RewardModelError, ValueError):
    """Messages that `rewardmodel.prompts` did not build, handed to its reader (e.g. an unknown prompt at a mock)."""
