"""The object store under the durable broker (services/broker/objectstore/server.js): a PUT cut
off by its writer's death (a kill -9 of tansu) leaves nothing a reader can see. s3rver alone
kept the part that had arrived, an empty batch that tansu failed to read on every fetch, and
consumers stalled at its offset for good. A PUT still in progress is listed (tansu then retries
the batch rather than skipping it); a partial file a killed store left is not, and goes at its
next start."""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from vigil.services.broker.local import free_loopback_port
from vigil.services.broker.object_store import BUCKET, ObjectStore

FOLDER = "clusters/c/topics/t/partitions/0000000000/records"


@pytest.fixture
def store(tmp_path):
    store = ObjectStore(tmp_path / "store", free_loopback_port(), tmp_path / "s3rver.log")
    store.start()
    yield store
    store.stop()


def listed(store: ObjectStore) -> dict[str, int]:
    """key -> size, as a listing of FOLDER (what tansu asks on every fetch) shows them."""
    answer = requests.get(
        f"{store.endpoint}/{BUCKET}", params={"list-type": "2", "prefix": f"{FOLDER}/"}, timeout=5
    )
    answer.raise_for_status()
    body = answer.text
    keys = [part.split("</Key>")[0] for part in body.split("<Key>")[1:]]
    sizes = [int(part.split("</Size>")[0]) for part in body.split("<Size>")[1:]]
    return dict(zip(keys, sizes, strict=True))


def start_put(store: ObjectStore, key: str, announced: int, sent: bytes) -> socket.socket:
    """A PUT of `announced` bytes of which only `sent` have gone yet; the caller owns the socket."""
    address = urlsplit(store.endpoint)
    connection = socket.create_connection((address.hostname, address.port), timeout=5)
    connection.sendall(
        f"PUT /{BUCKET}/{key} HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Content-Length: {announced}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + sent
    )
    time.sleep(0.2)  # the store has read what was sent
    return connection


def put_cut_off(store: ObjectStore, key: str, announced: int, sent: bytes) -> None:
    """A PUT whose writer dies after `sent` of its `announced` bytes."""
    start_put(store, key, announced, sent).close()


def test_a_put_cut_off_mid_body_is_neither_stored_nor_listed_and_a_whole_one_is(store):
    whole = f"{FOLDER}/00000000000000000001.batch"
    assert requests.put(f"{store.endpoint}/{BUCKET}/{whole}", data=b"x" * 100, timeout=5).status_code == 200

    for number, sent in ((2, b""), (3, b"y" * 40)):
        put_cut_off(store, f"{FOLDER}/{number:020d}.batch", announced=100, sent=sent)
    time.sleep(0.5)

    assert listed(store) == {whole: 100}
    assert requests.get(f"{store.endpoint}/{BUCKET}/{whole}", timeout=5).content == b"x" * 100
    for number in (2, 3):
        cut_off = f"{store.endpoint}/{BUCKET}/{FOLDER}/{number:020d}.batch"
        assert requests.get(cut_off, timeout=5).status_code == 404
    assert store.running


def test_an_object_file_a_killed_store_left_without_its_metadata_is_not_listed(store):
    """What a store killed mid-write leaves: the object's file, without the metadata s3rver
    writes last, and not written to since. It is not an object, and listings leave it out."""
    folder = store.directory / BUCKET / FOLDER
    folder.mkdir(parents=True)
    left = folder / "00000000000000000007.batch._S3rver_object"
    left.write_bytes(b"")
    a_minute_ago = time.time() - 60
    os.utime(left, (a_minute_ago, a_minute_ago))
    whole = f"{FOLDER}/00000000000000000008.batch"
    requests.put(f"{store.endpoint}/{BUCKET}/{whole}", data=b"z" * 10, timeout=5).raise_for_status()
    assert listed(store) == {whole: 10}


def test_the_partial_file_of_a_write_a_kill_cut_off_is_removed_when_the_store_starts_again(tmp_path):
    folder = tmp_path / "store" / BUCKET / FOLDER
    folder.mkdir(parents=True)
    left = folder / "00000000000000000007.batch._S3rver_object.4242-0.partial"
    left.write_bytes(b"half a batch")
    kept = folder / "00000000000000000006.batch._S3rver_object"
    kept.write_bytes(b"a whole batch")
    store = ObjectStore(tmp_path / "store", free_loopback_port(), tmp_path / "s3rver.log")
    store.start()
    try:
        assert not left.exists()
        assert kept.read_bytes() == b"a whole batch"
    finally:
        store.stop()
    assert "removed 1 partial object file" in (tmp_path / "s3rver.log").read_text()


def test_a_put_in_progress_is_listed_and_a_get_of_it_waits_for_the_whole_object(store):
    """tansu writes a partition's batches concurrently (two producers): a listing without the one
    still arriving made it skip that batch (a poison frame of the chaos suite was never read)."""
    key = f"{FOLDER}/00000000000000000004.batch"
    connection = start_put(store, key, announced=100, sent=b"a" * 50)
    try:
        assert listed(store) == {key: 100}
        got: dict[str, bytes] = {}
        url = f"{store.endpoint}/{BUCKET}/{key}"
        reader = threading.Thread(target=lambda: got.update(body=requests.get(url, timeout=10).content))
        reader.start()
        time.sleep(0.5)
        assert reader.is_alive(), "the GET did not wait for the object being written"
        connection.sendall(b"a" * 50)
        assert connection.recv(100).startswith(b"HTTP/1.1 200")
        reader.join(10)
        assert got == {"body": b"a" * 100}
    finally:
        connection.close()
