"""What an alert says out loud: one sentence per alert, in the operator's language (pure; no I/O).

    alert_phrase("một chiếc xe máy", "cam-3", "vi", "critical")
    -> "Khẩn cấp: phát hiện một chiếc xe máy tại camera 3."
    alert_phrase("a person climbing the fence", "Gate north", "en", "warning")
    -> "Alert: a person climbing the fence detected at camera Gate north."

- `what` is the standing query's text, in the query's own language (the caller passes the
  query's language, e.g. from `pipelines.prompts.detect_language`; "auto" is not a language).
- The severity picks the opening word: info "Thông báo" / "Notice", warning "Cảnh báo" /
  "Alert", critical "Khẩn cấp" / "Urgent". An escalated alert (raised again because nobody
  acknowledged it) opens with "Nhắc lại, chưa được xác nhận." / "Repeat, not yet acknowledged.".
- The camera is spoken by its configured name. The template already says "camera", so a
  leading "cam"/"camera" word of the name is dropped ("cam-3" -> "camera 3", not "camera cam
  3"), and "_" / "-" between words become spaces (a TTS engine reads "gate_2" badly). Digits
  stay digits: each TTS engine reads them in the sentence's language.
- Every string is NFC-normalised: Vietnamese typed on some keyboards arrives decomposed (a base
  letter plus combining tone marks), which TTS engines and string comparison treat differently.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal, get_args

Language = Literal["vi", "en"]
Severity = Literal["info", "warning", "critical"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

# "{what}" is the query text, "{camera}" the camera's speakable name.
TEMPLATES: dict[Language, dict[Severity, str]] = {
    "vi": {
        "info": "Thông báo: phát hiện {what} tại camera {camera}.",
        "warning": "Cảnh báo: phát hiện {what} tại camera {camera}.",
        "critical": "Khẩn cấp: phát hiện {what} tại camera {camera}.",
    },
    "en": {
        "info": "Notice: {what} detected at camera {camera}.",
        "warning": "Alert: {what} detected at camera {camera}.",
        "critical": "Urgent: {what} detected at camera {camera}.",
    },
}
ESCALATED_PREFIX: dict[Language, str] = {
    "vi": "Nhắc lại, chưa được xác nhận. ",
    "en": "Repeat, not yet acknowledged. ",
}

_SEPARATORS = re.compile(r"[\s_\-]+")
# "cam", "camera", "cam3" style prefixes: the template says "camera" already.
_CAMERA_WORD = re.compile(r"^(?:camera|cam)(?=\s|\d)\s*", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".!?;:,。…"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _language(language: str) -> Language:
    code = language.strip().lower() if isinstance(language, str) else language
    if code not in LANGUAGES:
        raise ValueError(
            f"no alert phrases for language {language!r}; supported: {', '.join(LANGUAGES)} "
            '("auto" must be resolved to the query\'s language first)'
        )
    return code


def speakable_camera_name(camera_name: str) -> str:
    """The camera's configured name as it is read out after the word "camera".

    "cam-3" -> "3", "camera_cong_chinh" -> "cong chinh", "Gate north" -> "Gate north",
    "cam" -> "cam" (a bare "cam" is the whole name, so it stays).
    """
    name = _SEPARATORS.sub(" ", _nfc(camera_name)).strip()
    if not name:
        raise ValueError("camera name is empty")
    rest = _CAMERA_WORD.sub("", name).strip()
    return rest or name


def _what(query_text: str) -> str:
    what = " ".join(_nfc(query_text).split()).rstrip(_TRAILING_PUNCTUATION).strip()
    if not what:
        raise ValueError("query text is empty")
    first = what.split(" ", 1)[0]
    # "Một chiếc xe máy" / "A person" read as the middle of a sentence; "UPS" or "iPhone" stay.
    if first[:1].isupper() and first[1:] == first[1:].lower():
        what = what[:1].lower() + what[1:]
    return what


def alert_phrase(
    query_text: str,
    camera_name: str,
    language: str,
    severity: str = "warning",
    escalated: bool = False,
) -> str:
    """The sentence spoken for an alert; NFC-normalised.

    Raises ValueError for an unsupported language (only "vi" and "en"), an unknown severity,
    or an empty query text or camera name.
    """
    lang = _language(language)
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of: {', '.join(SEVERITIES)}")
    sentence = TEMPLATES[lang][severity].format(
        what=_what(query_text), camera=speakable_camera_name(camera_name)
    )
    if escalated:
        sentence = ESCALATED_PREFIX[lang] + sentence
    return _nfc(sentence)
