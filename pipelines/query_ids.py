"""A standing query's id when the operator gives none: derived from its text (pure).

    derive_query_id("Một xe máy màu đỏ")          -> "mot-xe-may-mau-do"
    derive_query_id("a person climbing the fence") -> "a-person-climbing-the-fence"
    derive_query_id("🚲🚲")                          -> "q-<10 hex digits of the text's SHA-256>"

The same text always gives the same id, so registering a query twice is noticed (the API
answers 409) instead of standing twice under two ids. Ids keep to the contract's alphabet
(letters, digits, `.`, `_`, `-`; services/common/contract.py ID_PATTERN): Vietnamese letters lose
their diacritics (đ becomes d), anything else separates words. A text with no Latin letter or
digit left gets a hash instead.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_DERIVED_ID_LENGTH = 64
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
# Letters NFKD does not take apart into a base letter and a mark.
_FOLDED = str.maketrans({"đ": "d", "Đ": "d", "ß": "ss", "æ": "ae", "ø": "o", "ł": "l"})


def derive_query_id(text: str) -> str:
    """A readable id for `text` (see the module docstring); at most MAX_DERIVED_ID_LENGTH characters."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLDED).lower())
    ascii_text = "".join(char for char in decomposed if not unicodedata.combining(char))
    slug = _NOT_ALPHANUMERIC.sub("-", ascii_text.encode("ascii", "ignore").decode("ascii")).strip("-")
    if not slug:
        return f"q-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"
    return slug[:MAX_DERIVED_ID_LENGTH].rstrip("-")
