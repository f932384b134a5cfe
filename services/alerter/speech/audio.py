"""Checks of audio files: the duration of a valid WAV or MP3, None for anything else.

The synthesizer checks what an engine wrote before it is cached, and a cached file before it
is returned; MP3 frames are parsed here because gTTS returns bare MPEG audio.
"""

from __future__ import annotations

import wave
from pathlib import Path


def wav_duration(path: Path) -> float | None:
    """Seconds of a valid, non-empty RIFF/WAVE file; None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            f.seek(0)
            with wave.open(f) as w:
                frames, rate, channels = w.getnframes(), w.getframerate(), w.getnchannels()
    except (OSError, EOFError, wave.Error):
        return None
    if frames <= 0 or rate <= 0 or channels <= 0:
        return None
    return frames / rate


# MPEG audio layer III: bitrates (kbit/s) by index, sample rates by version.
_MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _id3_size(data: bytes, pos: int) -> int:
    if data[pos : pos + 3] != b"ID3" or len(data) < pos + 10:
        return 0
    size = 0
    for byte in data[pos + 6 : pos + 10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[pos + 5] & 0x10 else 0
    return 10 + size + footer


def mp3_duration(data: bytes) -> float | None:
    """Seconds of MPEG layer III audio (ID3 tags skipped); None when no audio frame is found.

    Concatenated MP3 streams (gTTS joins one per ~100 characters of text) are summed.
    """
    pos, seconds, frames = 0, 0.0, 0
    while pos + 4 <= len(data):
        tag = _id3_size(data, pos)
        if tag:
            pos += tag
            continue
        b1, b2 = data[pos + 1], data[pos + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
            if data[pos : pos + 3] == b"TAG":  # ID3v1 at the end
                break
            pos += 1  # resynchronise
            continue
        if bitrate_index in (0, 15) or rate_index == 3:
            pos += 1
            continue
        rate = _MP3_RATES[version][rate_index]
        bitrate = _MP3_BITRATES[1 if version == 3 else 2][bitrate_index] * 1000
        samples = 1152 if version == 3 else 576
        length = samples // 8 * bitrate // rate + ((b2 >> 1) & 1)
        if pos + length > len(data):  # a truncated last frame is not audio
            break
        seconds += samples / rate
        frames += 1
        pos += length
    return seconds if frames else None


def audio_duration(path: Path) -> float | None:
    """Seconds of a valid cached audio file (WAV or MP3, by suffix); None if invalid or missing."""
    if path.suffix == ".wav":
        return wav_duration(path)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return mp3_duration(data)
