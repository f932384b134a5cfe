"""Alert phrases: Vietnamese and English wording, severity, camera names, NFC, bad input."""

from __future__ import annotations

import unicodedata

import pytest

from vigil.pipelines.phrases import (
    LANGUAGES,
    SEVERITIES,
    TEMPLATES,
    alert_phrase,
    speakable_camera_name,
)


def test_vietnamese_alert_wording():
    assert (
        alert_phrase("một chiếc xe máy", "cổng chính", "vi", "warning")
        == "Cảnh báo: phát hiện một chiếc xe máy tại camera cổng chính."
    )


def test_english_alert_wording():
    assert (
        alert_phrase("a person climbing the fence", "Gate north", "en", "warning")
        == "Alert: a person climbing the fence detected at camera Gate north."
    )


@pytest.mark.parametrize(
    ("language", "severity", "opening"),
    [
        ("vi", "info", "Thông báo: phát hiện"),
        ("vi", "warning", "Cảnh báo: phát hiện"),
        ("vi", "critical", "Khẩn cấp: phát hiện"),
        ("en", "info", "Notice: "),
        ("en", "warning", "Alert: "),
        ("en", "critical", "Urgent: "),
    ],
)
def test_severity_picks_the_opening_word(language, severity, opening):
    phrase = alert_phrase("xe máy" if language == "vi" else "a motorcycle", "3", language, severity)
    assert phrase.startswith(opening)


def test_default_severity_is_warning():
    assert alert_phrase("a dog", "3", "en") == alert_phrase("a dog", "3", "en", "warning")


def test_escalated_alert_says_it_is_repeated():
    vi = alert_phrase("một chiếc xe máy", "cam-3", "vi", "critical", escalated=True)
    en = alert_phrase("a motorcycle", "cam-3", "en", "critical", escalated=True)
    assert vi == "Nhắc lại, chưa được xác nhận. Khẩn cấp: phát hiện một chiếc xe máy tại camera 3."
    assert en == "Repeat, not yet acknowledged. Urgent: a motorcycle detected at camera 3."


def test_every_language_has_every_severity_with_both_placeholders():
    assert set(TEMPLATES) == set(LANGUAGES) == {"vi", "en"}
    for language in LANGUAGES:
        assert set(TEMPLATES[language]) == set(SEVERITIES)
        for template in TEMPLATES[language].values():
            assert "{what}" in template and "{camera}" in template


def test_output_is_nfc_even_from_decomposed_input():
    decomposed = unicodedata.normalize("NFD", "một chiếc xe máy")
    assert decomposed != "một chiếc xe máy"  # the test means something
    phrase = alert_phrase(decomposed, unicodedata.normalize("NFD", "cổng chính"), "vi", "critical")
    assert phrase == "Khẩn cấp: phát hiện một chiếc xe máy tại camera cổng chính."
    assert unicodedata.is_normalized("NFC", phrase)


def test_query_text_reads_as_part_of_the_sentence():
    # Capitalised first word lowered, trailing punctuation and extra spaces dropped...
    assert (
        alert_phrase("  Một   chiếc xe máy. ", "3", "vi")
        == "Cảnh báo: phát hiện một chiếc xe máy tại camera 3."
    )
    assert alert_phrase("A person running!", "3", "en") == "Alert: a person running detected at camera 3."
    # ...but acronyms and mixed-case names keep their case.
    assert alert_phrase("UPS truck", "3", "en") == "Alert: UPS truck detected at camera 3."


@pytest.mark.parametrize(
    ("configured", "spoken"),
    [
        ("cam-3", "3"),
        ("cam3", "3"),
        ("Camera 12", "12"),
        ("camera_cong_chinh", "cong chinh"),
        ("Camera cổng chính", "cổng chính"),
        ("gate_2", "gate 2"),
        ("lobby-east", "lobby east"),
        ("camel-yard", "camel yard"),  # not a "cam" prefix
        ("cam", "cam"),  # the whole name stays
    ],
)
def test_camera_is_spoken_by_its_configured_name(configured, spoken):
    assert speakable_camera_name(configured) == spoken


def test_camera_word_is_not_doubled():
    assert alert_phrase("a dog", "Camera 7", "en").endswith("at camera 7.")
    assert alert_phrase("con chó", "camera-7", "vi").endswith("tại camera 7.")


def test_language_code_is_case_insensitive():
    assert alert_phrase("a dog", "3", " EN ") == alert_phrase("a dog", "3", "en")


@pytest.mark.parametrize("language", ["fr", "auto", "", "vi-VN"])
def test_unknown_language_is_a_clear_error(language):
    with pytest.raises(ValueError, match="no alert phrases for language") as info:
        alert_phrase("a dog", "3", language)
    assert "vi" in str(info.value) and "en" in str(info.value)


def test_unknown_severity_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        alert_phrase("a dog", "3", "en", "urgent")


@pytest.mark.parametrize(
    ("query", "camera", "message"), [(" ", "3", "query text"), ("a dog", " _ ", "camera")]
)
def test_empty_parts_are_refused(query, camera, message):
    with pytest.raises(ValueError, match=message):
        alert_phrase(query, camera, "en")
