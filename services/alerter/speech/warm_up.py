"""Speaking ahead of need: `SpeechWarmer` synthesises the phrases alerts will use before
any alert is raised, so that a raised alert finds its audio cached."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable

from vigil.services.alerter.speech.synthesizer import SpeechError, SpeechSynthesizer

log = logging.getLogger(__name__)


class SpeechWarmer:
    """Synthesises texts ahead of need, one at a time in a background thread, each (text,
    language) once per process; failures are logged and left for the alert itself to retry.

    So the first alert of a query on a camera does not wait for synthesis (a gTTS round trip
    can take a second); the alerter hands it each standing query's phrase for each camera it
    knows."""

    def __init__(self, synthesizer: SpeechSynthesizer) -> None:
        self.synthesizer = synthesizer
        self._wanted: set[tuple[str, str]] = set()
        # (text, language) to speak; an Event to set once everything before it is done; None to stop.
        self._queue: queue.SimpleQueue[tuple[str, str] | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="speech-warm-up", daemon=True)
        self._thread.start()

    def want(self, phrases: Iterable[tuple[str, str]]) -> int:
        """Queue each (text, language) not asked for before; returns how many were new."""
        new = 0
        for phrase in phrases:
            if phrase not in self._wanted:
                self._wanted.add(phrase)
                self._queue.put(phrase)
                new += 1
        return new

    def wait(self, timeout_s: float) -> bool:
        """Block until everything queued so far is done (tests, the benchmark); False on timeout."""
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout_s)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            text, language = item
            try:
                self.synthesizer.synthesize(text, language)
            except (SpeechError, ValueError, OSError) as error:
                log.info("could not speak ahead of time (the alert will try again): %s", error)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)
