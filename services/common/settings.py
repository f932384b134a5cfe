"""What every service's settings share: one root model, and one section of the YAML file, then
the environment.

Each service runs on one root model (`ServiceSettings`: `DetectorServiceSettings`,
`AlerterServiceSettings`, `IngestServiceSettings`) that nests what it is configured with, each
part loaded its own way by the root's `load(path)`: the service's own settings, Kafka
(VIGIL_KAFKA_*), and where it stores (VIGIL_MILVUS_*). `vigil <service>`, `vigil up` and the
tests build a service from that one value.

A service reads its own section (`detector:`, `alerter:`, ...) of a file that may configure the
other services too, as `vigil up`'s does; VIGIL_<SERVICE>_* variables override the file, which
overrides the defaults. Errors name the file, the section and the field. (Ingest's part is the
file's top level, `cameras:` and `defaults:`, as it was before the other services joined it:
services/ingest/config.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from vigil.errors import VigilError
from vigil.services.common.contract import describe_validation_error


class EnvironmentSettings(BaseSettings):
    """Base of a part configured by the environment alone (Kafka, the store): no file section."""

    # How errors name the part: "invalid <describes> settings (VIGIL_...*): ...".
    describes: ClassVar[str] = "service"

    @classmethod
    def load(cls, path: Path | None = None) -> Self:
        """From the environment (`path` is the service's file, which has no section for this);
        a VigilError naming the bad variable."""
        try:
            return cls()
        except ValidationError as error:
            prefix = cls.model_config.get("env_prefix", "")
            raise VigilError(
                f"invalid {cls.describes} settings ({prefix}*): {describe_validation_error(error)}"
            ) from None


class EnvOverFileSettings(BaseSettings):
    """Base of a service's settings: the environment wins over the file's values (passed in as
    init arguments), as for every Vigil service."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


class SectionSettings(EnvOverFileSettings):
    """Base of a service's own settings: its `section` of the YAML file, under its
    VIGIL_<SERVICE>_* variables; `error` is what a bad value raises."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="forbid", validate_default=True)
    section: ClassVar[str]
    error: ClassVar[type[VigilError]]

    @classmethod
    def load(cls, path: Path | None = None) -> Self:
        """Defaults, then the section of the YAML file at `path` (if any; the file may configure
        the other services too, as `vigil up`'s does), then the environment."""
        return load_section(path, cls.section, cls, cls.error)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ServiceSettings(BaseModel):
    """Base of a service's root settings (see the module docstring): its fields are the parts,
    each a class that loads itself (`load(path)`: `SectionSettings`, `EnvironmentSettings`, or
    ingest's cameras file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def load(cls, path: Path | None = None) -> Self:
        """Every part, from the YAML file at `path` (if any) and the environment; a VigilError
        naming the file, section or variable that is wrong."""
        parts: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            part: Any = field.annotation
            parts[name] = part.load(path)
        return cls(**parts)


def load_section(
    path: Path | None, section: str, settings_cls: type[SettingsT], error_cls: type[VigilError]
) -> SettingsT:
    """Defaults, then the `section:` mapping of the YAML file at `path` (if any), then the
    environment; `error_cls` with a message naming where the bad value was."""
    document: dict = {}
    where = f"{section} settings ({settings_cls.model_config.get('env_prefix', '')}*)"
    if path is not None:
        where = str(path)
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as error:
            raise error_cls(f"cannot read {section} config {path}: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise error_cls(f"{path}: not valid YAML: {error}") from None
        if not isinstance(document, dict):
            raise error_cls(f"{path}: expected a mapping with a `{section}` section")
        document = document.get(section) or {}
        if not isinstance(document, dict):
            raise error_cls(f"{path}: {section}: expected a mapping of {section} settings")
        where = f"{path}: {section}"
    try:
        return settings_cls(**document)
    except ValidationError as error:
        raise error_cls(f"{where}: {describe_validation_error(error)}") from None
