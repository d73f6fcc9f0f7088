"""Typed errors at the reward-model boundary.

Every failure that crosses this boundary is one of these (or an `Abstention` value): callers never see a bare
`Exception`, and nothing here is ever turned into a made-up score.
"""

from __future__ import annotations

from rationalrewards.plumbing.errors import (
    ResponseTooLargeError,
    RewardModelError,
    RewardRequestError,
    RewardServerError,
    RewardTimeoutError,
)

__all__ = [
    "CritiqueParseError",
    "ImageTooLargeError",
    "InvalidImageError",
    "NoActiveAspectsError",
    "PromptFormatError",
    "ResponseTooLargeError",
    "RewardModelError",
    "RewardRequestError",
    "RewardServerError",
    "RewardTimeoutError",
]


class CritiqueParseError(RewardModelError, ValueError):
    """A critique text could not be turned into a typed object. Holds the raw text for inspection."""

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(message)
        self.raw_text = raw_text


class InvalidImageError(RewardModelError, ValueError):
    """An image input is missing, unreadable or not an image."""


class ImageTooLargeError(InvalidImageError):
    """An image has more pixels than the configured limit (a decompression bomb, or simply too large to judge)."""


class NoActiveAspectsError(RewardModelError, ValueError):
    """A critique has no scored aspect that the chosen reward policy uses, so no reward can be computed."""


class PromptFormatError(RewardModelError, ValueError):
    """Messages that `rewardmodel.prompts` did not build, handed to its reader (e.g. an unknown prompt at a mock)."""
