"""What an alert says and in which language, for a standing query or one that is gone (pure).

    alert_wording(query, "q-7", partial(config.camera_name, "cam-3"), "vi", "warning", escalated=False)
    -> AlertWording(text="Cảnh báo: phát hiện một chiếc xe máy tại camera 3.", language="vi")

- A standing query speaks its own text in its own language ("auto" resolved from the text by
  `pipelines.prompts.resolve_language`).
- A hit whose query is not (or no longer) standing, e.g. deleted while its event was open,
  still alerts: its text is unknown, so the sentence names the query id, in the operator's
  default language.

The camera is named in the sentence's language: `camera_name(language)` is the caller's
lookup of the configured names (a camera may have one per language). The sentence itself is
`pipelines.phrases.alert_phrase`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from vigil.pipelines.phrases import Language, alert_phrase
from vigil.pipelines.prompts import resolve_language


class WordedQuery(Protocol):
    """What the wording reads of a standing query (services.common.contract.QueryMessage fits)."""

    @property
    def text(self) -> str: ...
    @property
    def language(self) -> str: ...


class AlertWording(NamedTuple):
    """The sentence an alert says, and its language: a (text, language) pair as speech takes it."""

    text: str
    language: Language


def alert_wording(
    query: WordedQuery | None,
    query_id: str,
    camera_name: Callable[[str], str],
    default_language: Language,
    severity: str,
    *,
    escalated: bool,
) -> AlertWording:
    """The wording of an alert of `query` (None: not standing, so `query_id` in
    `default_language`); raises ValueError as `alert_phrase` does."""
    if query is None:
        language, what = default_language, query_id
    else:
        language, what = resolve_language(query.text, query.language), query.text
    text = alert_phrase(what, camera_name(language), language, severity, escalated=escalated)
    return AlertWording(text, language)
