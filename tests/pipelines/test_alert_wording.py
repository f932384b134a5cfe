"""What an alert says: a standing query's text in its language, a query that is gone by its id in
the default language, the camera named in the sentence's language (pure, no broker)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vigil.pipelines.alert_wording import AlertWording, alert_wording

NAMES = {"cam-3": {"vi": "cổng chính", "en": "main gate"}}


@dataclass(frozen=True)
class Query:
    text: str
    language: str = "auto"


class CameraNames:
    """The config's lookup: the camera's name in a language, its id when it has none; it
    remembers the languages it was asked for."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id, self.asked = camera_id, []

    def __call__(self, language: str) -> str:
        self.asked.append(language)
        return NAMES.get(self.camera_id, {}).get(language, self.camera_id)


def test_a_standing_query_speaks_its_text_in_the_language_detected_from_it():
    name = CameraNames("cam-3")
    wording = alert_wording(Query("Một chiếc xe máy"), "q-moto", name, "en", "warning", escalated=False)
    assert wording == AlertWording("Cảnh báo: phát hiện một chiếc xe máy tại camera cổng chính.", "vi")
    assert name.asked == ["vi"]  # the camera is named in the sentence's language


def test_a_standing_query_with_a_language_keeps_it():
    wording = alert_wording(
        Query("a person climbing the fence", "en"),
        "q-fence",
        CameraNames("cam-3"),
        "vi",
        "critical",
        escalated=False,
    )
    assert wording == ("Urgent: a person climbing the fence detected at camera main gate.", "en")


def test_an_escalated_alert_says_it_is_repeated():
    wording = alert_wording(
        Query("a fire", "en"), "q-fire", CameraNames("cam-1"), "en", "critical", escalated=True
    )
    assert wording.text == "Repeat, not yet acknowledged. Urgent: a fire detected at camera 1."


def test_a_query_that_is_gone_is_named_by_its_id_in_the_default_language():
    name = CameraNames("cam-3")
    wording = alert_wording(None, "q-moto", name, "vi", "warning", escalated=False)
    assert wording == AlertWording("Cảnh báo: phát hiện q-moto tại camera cổng chính.", "vi")
    assert name.asked == ["vi"]
    english = alert_wording(None, "q-moto", CameraNames("cam-9"), "en", "info", escalated=True)
    assert english == ("Repeat, not yet acknowledged. Notice: q-moto detected at camera 9.", "en")


def test_the_wording_is_a_text_language_pair_as_speech_takes_it():
    text, language = alert_wording(None, "q-1", CameraNames("cam-1"), "en", "warning", escalated=False)
    assert (text, language) == ("Alert: q-1 detected at camera 1.", "en")
    assert {alert_wording(None, "q-1", CameraNames("cam-1"), "en", "warning", escalated=False)} == {
        (text, language)
    }


def test_bad_input_is_refused_as_alert_phrase_refuses_it():
    with pytest.raises(ValueError, match="language must be 'auto' or one of"):
        alert_wording(Query("a fire", "fr"), "q", CameraNames("cam-1"), "en", "warning", escalated=False)
    with pytest.raises(ValueError, match="unknown severity"):
        alert_wording(None, "q", CameraNames("cam-1"), "en", "loud", escalated=False)
