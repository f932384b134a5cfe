"""The API service's settings: one root model, `vigil api --config vigil.yaml`.

Its own part is the `api:` section (VIGIL_API_*; services/common/api_settings.py, which the
alerter reads too for the links in its webhooks); then Kafka (VIGIL_KAFKA_*), the thumbnails it
serves (VIGIL_MILVUS_THUMBNAILS_DIR, the detector's; `api: thumbnails_dir` overrides it) and
its retrospective search (the detector's store and encoder).
"""

from __future__ import annotations

from pydantic import Field

from vigil.services.common.api_settings import ApiConfigError, ApiSettings
from vigil.services.common.kafka import KafkaSettings
from vigil.services.common.settings import ServiceSettings
from vigil.services.common.thumbnail_store import ThumbnailSettings
from vigil.services.search import SearchSettings

__all__ = ["ApiConfigError", "ApiServiceSettings", "ApiSettings"]


class ApiServiceSettings(ServiceSettings):
    """Everything `vigil api` runs on (see the module docstring)."""

    api: ApiSettings
    kafka: KafkaSettings
    thumbnails: ThumbnailSettings
    # The API's search: the detector's store and encoder (services/search/frame_search.py).
    search: SearchSettings = Field(default_factory=SearchSettings.load)
