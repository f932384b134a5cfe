"""Spoken alerts: text to an audio file, online (Google TTS) or offline (espeak-ng), cached.

    speech = SpeechSynthesizer(SpeechSettings(cache_dir=Path("var/speech")))
    result = speech.synthesize(alert_phrase("một chiếc xe máy", "cam-3", "vi", "critical"), "vi")
    speech.play(result.path)          # False (and nothing happens) without a sound device

Engines are tried in `engines` order (default gTTS, then espeak-ng):

- gtts: Google Translate's TTS endpoint through the `gTTS` package; natural voices, MP3, needs
  the internet. Every attempt is bounded by `gtts_timeout_s`: the timeout goes to requests
  (gTTS >= 2.3 takes `timeout=`) AND the attempt runs in a worker thread that is abandoned at
  the deadline, because requests' timeout is per socket operation (a slow trickle, a DNS
  lookup or a long text sent in several requests can each outlast it). Failed attempts are
  retried `gtts_retries` times (tenacity, no wait), so gTTS costs at most
  gtts_timeout_s * (gtts_retries + 1) before the next engine speaks. After a failure gTTS is
  skipped for `gtts_cooldown_s`, so that on a site without internet every new phrase does
  not wait out the timeout first. The MP3 is collected in memory, checked (at least one MPEG
  audio frame) and only then written: a temporary file renamed into place, so neither a
  0-byte file nor a half-written one is ever left or returned.
- espeak-ng: the Debian package, offline, Vietnamese (`-v vi`) and English; WAV. Text goes on
  stdin as UTF-8 (`--stdin -b 1`), never through a shell or the argument list. The output is
  checked to be a non-empty RIFF/WAVE before it is renamed into the cache.

Cache: one file per (text, language, engine, engine parameters) named by the SHA-256 of those
(`<engine>-<sha256>.mp3|.wav`), so no text can reach outside `cache_dir`. A look-up returns
the first cached file in `engines` order (a cached gTTS recording is preferred over a cached
espeak-ng one) without synthesising anything; a cached espeak-ng recording is therefore kept
even once gTTS is reachable again (delete the cache to upgrade).

Metrics: pass `observe(engine, seconds, ok)`; it is called once per engine attempt that ran
(not for cache hits, nor for a gTTS skipped during its cool-down).

One module per part: settings.py (`SpeechSettings`, the engines), audio.py (WAV and MP3
checks), playback.py (`play` on the local sound device), synthesizer.py (`SpeechSynthesizer`:
engines, cache, cool-down) and warm_up.py (`SpeechWarmer`, speaking ahead of need).
"""

from vigil.services.alerter.speech.audio import audio_duration, mp3_duration, wav_duration
from vigil.services.alerter.speech.playback import find_player, play, sound_device_available
from vigil.services.alerter.speech.settings import CONTENT_TYPES, ENGINES, Engine, SpeechSettings
from vigil.services.alerter.speech.synthesizer import Observer, SpeechError, SpeechResult, SpeechSynthesizer
from vigil.services.alerter.speech.warm_up import SpeechWarmer

__all__ = [
    "CONTENT_TYPES",
    "ENGINES",
    "Engine",
    "Observer",
    "SpeechError",
    "SpeechResult",
    "SpeechSettings",
    "SpeechSynthesizer",
    "SpeechWarmer",
    "audio_duration",
    "find_player",
    "mp3_duration",
    "play",
    "sound_device_available",
    "wav_duration",
]
