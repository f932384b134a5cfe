"""One Milvus lite directory shared by real processes (services/detector/store/lite_sharing.py):
an owner process writing, a second process searching and writing through the owner's server; a
stale advertisement (its owner killed) is never trusted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vigil.services.detector.store import (
    FrameRecord,
    HitStore,
    MilvusLockedError,
    NoLiteOwnerError,
    StoreSettings,
)
from vigil.services.detector.store.lite_sharing import ADVERTISEMENT, owner_uri

DIM = 8
REPO_ROOT = Path(__file__).resolve().parents[2]

# The owner: opens the directory, says READY, then writes one frame of camera "live" every 20 ms
# (each flushed) until it is killed or its stdin closes, and says how many it wrote.
OWNER = textwrap.dedent(
    """
    import sys, threading, numpy as np
    from vigil.services.detector.store import FrameRecord, HitStore, StoreSettings
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with HitStore(StoreSettings(uri=sys.argv[1], dim=8)) as store:
        print("READY", store.lite_owner_uri, flush=True)
        written = 0
        while not stop.wait(0.02):
            store.add_frames([FrameRecord("live", 1_000 * (written + 1), np.eye(8, dtype=np.float32)[0])])
            store.flush_frames()
            written += 1
    print("WROTE", written, flush=True)
    """
)


def unit(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def start_owner(directory: Path) -> subprocess.Popen:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    line = owner.stdout.readline()
    assert line.split() == ["READY", "None"], line  # it owns the directory: no owner's URI
    return owner


def test_a_second_process_searches_and_writes_while_the_owner_writes(tmp_path):
    directory = tmp_path / "milvus"
    owner = start_owner(directory)
    try:
        advertised = json.loads((directory / ADVERTISEMENT).read_text())
        assert advertised["pid"] == owner.pid and advertised["uri"].startswith("http://127.0.0.1:")
        with HitStore(StoreSettings(uri=str(directory), dim=DIM)) as reader:
            assert reader.lite_owner_uri == advertised["uri"]
            # The owner's rows, as it writes them.
            seen = reader.count_frames()
            deadline = time.monotonic() + 20
            while reader.count_frames() < seen + 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert reader.count_frames() >= seen + 20
            (matches,) = reader.search_frames([unit(0)], top_k=3, camera_ids=["live"])
            assert len(matches) == 3 and all(m.score == pytest.approx(1.0, abs=1e-5) for m in matches)
            # Writing through the owner while it writes too (its server serialises the writes).
            for batch in range(20):
                reader.add_frames(
                    [FrameRecord("recorded", 1_000 * (batch * 10 + i), unit(1)) for i in range(10)]
                )
            reader.flush_frames()
            recorded = reader.frames_between("recorded", 0, 10_000_000, limit=1_000)
            assert [f.ts_ms for f in recorded] == [1_000 * i for i in range(200)]
            (nearest,) = reader.search_frames([unit(1)], top_k=5, camera_ids=["recorded"])
            assert len(nearest) == 5 and all(m.score == pytest.approx(1.0, abs=1e-5) for m in nearest)
    finally:
        out, _ = owner.communicate("", timeout=60)  # closes its stdin: it stops writing
    written = int(out.split()[-1])
    assert owner.returncode == 0 and written >= 20
    # The owner withdrew its advertisement on close; every row of both writers is there.
    assert not (directory / ADVERTISEMENT).exists()
    with HitStore(StoreSettings(uri=str(directory), dim=DIM)) as reopened:
        assert reopened.lite_owner_uri is None
        assert reopened.count_frames() == written + 200


def test_a_killed_owners_advertisement_is_not_trusted_and_the_next_owner_replaces_it(tmp_path):
    directory = tmp_path / "milvus"
    owner = start_owner(directory)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=30)
    stale = json.loads((directory / ADVERTISEMENT).read_text())
    assert stale["pid"] == owner.pid  # a killed owner cannot withdraw it
    assert owner_uri(directory, wait_s=0) is None
    with pytest.raises(NoLiteOwnerError, match="no Vigil process has the Milvus lite directory"):
        HitStore(StoreSettings(uri=str(directory), dim=DIM), may_own_lite=False)
    # The lock went with the owner: the next store owns the directory and advertises itself.
    with HitStore(StoreSettings(uri=str(directory), dim=DIM)) as next_owner:
        assert next_owner.lite_owner_uri is None
        assert json.loads((directory / ADVERTISEMENT).read_text())["pid"] == os.getpid()
        assert next_owner.count_frames() >= 0


def test_a_locked_directory_whose_advertisement_names_a_dead_process_is_refused(tmp_path):
    directory = tmp_path / "milvus"
    directory.mkdir()
    # A process that holds lite's lock but serves no one (lite opened directly), and an
    # advertisement left by a dead process.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    (directory / ADVERTISEMENT).write_text(json.dumps({"uri": "http://127.0.0.1:9", "pid": dead.pid}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from milvus_lite.db import MilvusLite; db = MilvusLite(sys.argv[1]); "
            "print('HELD', flush=True); sys.stdin.read(); db.close()",
            str(directory),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "HELD"
        started = time.monotonic()
        with pytest.raises(MilvusLockedError, match="serves it to no one"):
            HitStore(StoreSettings(uri=str(directory), dim=DIM))
        assert time.monotonic() - started < 30
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
