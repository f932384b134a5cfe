"""Fixtures of the alerter tests (their helpers are in alerter_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alerter_support import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on loopback that verifies signatures (see Receiver)."""
    r = Receiver()
    yield r
    r.stop()
