"""Where the detector's results are stored: the Milvus URI (lite directory or server), the
collections, their index parameters and the thumbnail folder (environment: VIGIL_MILVUS_<FIELD>)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from vigil.paths import var_dir
from vigil.services.common.settings import EnvironmentSettings
from vigil.services.common.thumbnail_store import default_thumbnails_dir

SERVER_URI_SCHEMES = ("http://", "https://", "tcp://", "unix:")
COLLECTION_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"


class StoreSettings(EnvironmentSettings):
    """Where hits, frames and thumbnails are stored (environment: VIGIL_MILVUS_<FIELD>)."""

    describes = "Milvus"

    model_config = SettingsConfigDict(env_prefix="VIGIL_MILVUS_", extra="forbid", validate_default=True)

    uri: str = Field(
        default_factory=lambda: str(var_dir() / "milvus"),
        min_length=1,
        description="a local directory (Milvus lite, one owning process) or http(s)://host:19530",
    )
    token: SecretStr | None = Field(None, description="Milvus server token ('user:password' or API key)")
    dim: int = Field(512, ge=2, le=32_768, description="embedding dimension: the encoder's")
    hits_collection: str = Field("vigil_hits", pattern=COLLECTION_NAME_PATTERN)
    frames_collection: str = Field("vigil_frames", pattern=COLLECTION_NAME_PATTERN)
    # The alerter reads the same variable through services/common's ThumbnailSettings.
    thumbnails_dir: Path = Field(default_factory=default_thumbnails_dir)
    hnsw_m: int = Field(16, ge=4, le=64)
    hnsw_ef_construction: int = Field(200, ge=8, le=512)
    search_ef: int = Field(64, ge=1, le=32_768, description="HNSW search breadth; >= top_k")
    frames_flush_rows: int = Field(
        1_000, ge=1, le=1_000_000, description="flush the frame index after this many new rows"
    )
    timeout_s: float = Field(10.0, gt=0, le=600)

    @property
    def is_lite(self) -> bool:
        return not self.uri.startswith(SERVER_URI_SCHEMES)

    def uri_for_logs(self) -> str:
        """The URI without any user:password part (a server URI may carry one)."""
        if self.is_lite:
            return self.uri
        parts = urlsplit(self.uri)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
