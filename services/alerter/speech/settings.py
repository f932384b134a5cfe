"""How alerts are spoken: `SpeechSettings` (the alerter config's `speech`) and the engines'
names and content types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.paths import var_dir

Engine = Literal["gtts", "espeak-ng"]
ENGINES: tuple[Engine, ...] = ("gtts", "espeak-ng")
CONTENT_TYPES: dict[Engine, str] = {"gtts": "audio/mpeg", "espeak-ng": "audio/wav"}
# A language code such as "vi", "en" or "en-us" (settings' voices, and what is spoken).
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")


class SpeechSettings(BaseModel):
    """How alerts are spoken. Durations are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_dir: Path = Field(
        default_factory=lambda: var_dir() / "speech", description="audio files; default <VIGIL_HOME>/speech"
    )
    engines: list[Engine] = Field(
        default_factory=lambda: ["gtts", "espeak-ng"], min_length=1, description="tried in this order"
    )
    gtts_timeout_s: float = Field(3.0, gt=0, le=60, description="bound on one gTTS attempt")
    gtts_retries: int = Field(1, ge=0, le=5, description="gTTS attempts after the first")
    gtts_cooldown_s: float = Field(
        60.0, ge=0, description="after gTTS fails, skip it for this long (0 = try it every time)"
    )
    gtts_tld: str = Field(
        "com", pattern=r"^[a-z]{2,3}(?:\.[a-z]{2,3})?$", description="Google host: translate.google.<tld>"
    )
    espeak_binary: str = Field("espeak-ng", min_length=1, description="name on PATH or a path")
    espeak_voices: dict[str, str] = Field(
        default_factory=lambda: {"vi": "vi", "en": "en-us"}, description="language -> espeak-ng voice"
    )
    espeak_speed_wpm: int = Field(160, ge=80, le=450, description="espeak-ng -s (its default is 175)")
    espeak_timeout_s: float = Field(10.0, gt=0, le=120)
    max_chars: int = Field(2000, ge=1, description="longer texts are refused (AlertMessage.text's limit)")
    play_timeout_s: float = Field(60.0, gt=0, description="a player still running after this is killed")
    warm_up: bool = Field(
        True,
        description="speak each standing query's alert for each known camera ahead of time, in the "
        "background, so that a raised alert finds its audio cached",
    )

    @field_validator("engines")
    @classmethod
    def _distinct(cls, engines: list[Engine]) -> list[Engine]:
        if len(set(engines)) != len(engines):
            raise ValueError(f"engines must not repeat: {engines}")
        return engines

    @field_validator("espeak_voices")
    @classmethod
    def _voice_names(cls, voices: dict[str, str]) -> dict[str, str]:
        for language, voice in voices.items():
            if not LANGUAGE_RE.match(language):
                raise ValueError(f"espeak_voices: {language!r} is not a language code such as 'vi'")
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_+.-]*$", voice):
                raise ValueError(f"espeak_voices[{language!r}]: {voice!r} is not an espeak-ng voice name")
        return voices
