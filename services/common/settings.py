"""What every service's settings share: one section of the YAML file, then the environment.

A service reads its own section (`detector:`, `alerter:`, ...) of a file that may configure the
other services too, as `vigil up`'s does; VIGIL_<SERVICE>_* variables override the file, which
overrides the defaults. Errors name the file, the section and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from vigil.errors import VigilError
from vigil.services.common.contract import describe_validation_error


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


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


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
