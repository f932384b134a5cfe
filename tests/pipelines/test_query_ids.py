"""A standing query's id derived from its text (pipelines/query_ids.py): readable, in the
contract's alphabet, the same for the same text."""

from __future__ import annotations

import re

import pytest

from vigil.pipelines.query_ids import MAX_DERIVED_ID_LENGTH, derive_query_id

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # services/common/contract.py ID_PATTERN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a person climbing the fence", "a-person-climbing-the-fence"),
        ("Một xe máy màu đỏ", "mot-xe-may-mau-do"),
        ("ĐƯỜNG CẤM", "duong-cam"),
        ("  a cat!  ", "a-cat"),
    ],
)
def test_ids_read_like_the_text(text, expected):
    assert derive_query_id(text) == expected


def test_a_text_without_latin_letters_gets_a_stable_hash():
    derived = derive_query_id("🚲🚲")
    assert re.fullmatch(r"q-[0-9a-f]{10}", derived) and derive_query_id("🚲🚲") == derived
    assert derive_query_id("🚗") != derived


def test_ids_fit_the_contract_whatever_the_text():
    for text in ["x" * 500, "-" + "ab " * 100, "日本語", "a\u0301b"]:
        derived = derive_query_id(text)
        assert ID.fullmatch(derived) and len(derived) <= MAX_DERIVED_ID_LENGTH, (text, derived)
