"""Errors a user can cause or fix. The CLI prints them as one clear line (no stack trace)."""


class VigilError(Exception):
    """Base class: the message names what was wrong and, where possible, how to fix it."""


class BadImageError(VigilError):
    """An image that cannot be embedded: empty, unreadable, truncated, wrong shape or dtype."""


class BadTextError(VigilError):
    """A text that cannot be embedded (e.g. empty after stripping whitespace)."""


class ModelUnavailableError(VigilError):
    """Weights or an exported model are missing; the message names every way to provide them."""
