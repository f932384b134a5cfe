"""Absolute, signed links to an alert's thumbnail and audio, served by the API process.

    links = AlertLinks(api_settings.base_url(), api_settings.link_signer())
    links.for_alert(alert, time.time())   # {"thumbnail_url": ..., "audio_url": ...}

The API puts them in every alert it serves, and the alerter in every webhook payload: an
<img>/<audio> element or a webhook receiver fetches them without a token until they expire
(services/common/auth.py, `UrlSigner`; the API checks them in services/api/media.py).
"""

from __future__ import annotations

from urllib.parse import quote

from vigil.services.common.auth import UrlSigner
from vigil.services.common.contract import AlertMessage

AUDIO_PREFIX = "/media/audio/"
THUMBNAIL_PREFIX = "/media/thumbnails/"


class AlertLinks:
    """Absolute, signed links to an alert's thumbnail and audio."""

    def __init__(self, base_url: str, signer: UrlSigner) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def _link(self, path: str, now_s: float) -> str:
        return f"{self.base_url}{quote(path)}?{self.signer.signed_query(path, now_s)}"

    def thumbnail_url(self, reference: str | None, now_s: float) -> str | None:
        return self._link(THUMBNAIL_PREFIX + reference, now_s) if reference else None

    def audio_url(self, name: str | None, now_s: float) -> str | None:
        return self._link(AUDIO_PREFIX + name, now_s) if name else None

    def for_alert(self, alert: AlertMessage, now_s: float) -> dict[str, str | None]:
        return {
            "thumbnail_url": self.thumbnail_url(alert.thumbnail, now_s),
            "audio_url": self.audio_url(alert.audio, now_s),
        }
