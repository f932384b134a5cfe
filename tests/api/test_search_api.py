"""GET /api/v1/search and GET /api/v1/frames over real uvicorn, a real Milvus lite store and the
real offline encoder: the router connects lazily through the store's owner (this test's process,
standing in for the detector), signs its thumbnail links, and refuses with 4xx/503, never 5xx."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from fastapi import FastAPI

from vigil.models.registry import EncoderSettings, create_encoder
from vigil.services.api.search import search_router
from vigil.services.broker.local import free_loopback_port
from vigil.services.common.auth import ApiToken, TokenAuthority, UrlSigner
from vigil.services.common.http import HttpServer
from vigil.services.common.media_links import AlertLinks
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.store import HitStore, StoreSettings
from vigil.services.search import LazyFrameSearch, SearchSettings, index_video

VIEWER = "viewer-token-0123456789"
SIGNING_KEY = "link-signing-key-0123456789abcdef"
START_MS = 1_796_637_600_000  # 2026-12-07T10:00:00Z
CAT_MS = (START_MS + 12_000, START_MS + 20_000)  # the demo clip's cat


def bearer(token: str = VIEWER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serve(search: LazyFrameSearch, signer: UrlSigner) -> tuple[HttpServer, str]:
    app = FastAPI()
    port = free_loopback_port()
    links = AlertLinks(f"http://127.0.0.1:{port}", signer)
    app.include_router(
        search_router(search, TokenAuthority([ApiToken(name="vera", role="viewer", token=VIEWER)]), links)
    )
    return HttpServer(app, "127.0.0.1", port, "search-test"), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from vigil.fixtures.media import MediaUnavailableError, event_clip

    try:
        clip = event_clip()
    except MediaUnavailableError as error:
        pytest.skip(str(error))
    home = tmp_path_factory.mktemp("search-api")
    encoder_settings = EncoderSettings(kind="auto")
    encoder = create_encoder(encoder_settings)
    store_settings = StoreSettings(
        uri=str(home / "milvus"), dim=encoder.info.dim, thumbnails_dir=home / "thumbnails"
    )
    signer = UrlSigner(SIGNING_KEY, 600)
    # This process owns the store, as the detector would; the router only ever goes through it.
    with HitStore(store_settings) as owner:
        index_video(clip, "hall", START_MS, owner, encoder, ThumbnailStore(home / "thumbnails"))
        search = LazyFrameSearch(SearchSettings(store=store_settings, encoder=encoder_settings))
        server, base = serve(search, signer)
        try:
            yield base, signer
        finally:
            server.close()
            search.close()


def test_a_search_returns_collapsed_moments_with_signed_thumbnail_links(api):
    base, signer = api
    response = requests.get(
        f"{base}/api/v1/search", params={"text": "một con mèo", "limit": 3}, headers=bearer(), timeout=60
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert 1 <= len(results) <= 3
    top = results[0]
    assert CAT_MS[0] - 1_000 <= top["ts_ms"] < CAT_MS[1] + 1_000
    assert top["camera_id"] == "hall" and top["source"] == "frame" and top["frames"] > 1
    assert (
        top["start_ts_ms"] <= top["ts_ms"] <= top["end_ts_ms"]
        and top["query_id"] is None
        and top["box"] is None
    )
    link = urlsplit(top["thumbnail_url"])
    assert link.path == f"/media/thumbnails/hall/2026-12-07/{top['ts_ms']}.jpg"
    query = dict(part.split("=") for part in link.query.split("&"))
    signer.verify(link.path, query["expires"], query["signature"], START_MS / 1000)  # raises if forged
    # Filters: only a time window without the cat.
    after = requests.get(
        f"{base}/api/v1/search",
        params={"text": "a cat", "since_ts_ms": CAT_MS[1] + 2_000, "camera_id": "hall"},
        headers=bearer(),
        timeout=60,
    ).json()["results"]
    assert after and all(r["start_ts_ms"] >= CAT_MS[1] + 2_000 for r in after)
    assert requests.get(
        f"{base}/api/v1/search", params={"text": "a cat", "camera_id": "other"}, headers=bearer(), timeout=60
    ).json() == {"results": []}


def test_the_frames_around_a_moment_oldest_first(api):
    base, _ = api
    around = START_MS + 15_000
    response = requests.get(
        f"{base}/api/v1/frames",
        params={"camera_id": "hall", "around_ts_ms": around, "span_s": 4},
        headers=bearer(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    frames = response.json()["frames"]
    assert [f["ts_ms"] for f in frames] == [around + d for d in (-2_000, -1_000, 0, 1_000, 2_000)]
    assert all(f["camera_id"] == "hall" and "/media/thumbnails/hall/" in f["thumbnail_url"] for f in frames)


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("search", {"text": "a cat", "since_ts_ms": 2_000, "until_ts_ms": 1_000}, 400, "after until_ts_ms"),
        ("search", {"text": "   "}, 400, "needs some text"),
        ("search", {}, 422, "text"),
        ("search", {"text": "a cat", "limit": 0}, 422, "limit"),
        ("search", {"text": "a cat", "camera_id": "no spaces"}, 422, "camera_id"),
        ("frames", {"camera_id": "hall"}, 422, "around_ts_ms"),
        ("frames", {"camera_id": "hall", "around_ts_ms": 1, "span_s": 0}, 422, "span_s"),
    ],
)
def test_bad_input_is_a_4xx_naming_what_was_wrong(api, path, params, status, says):
    base, _ = api
    response = requests.get(f"{base}/api/v1/{path}", params=params, headers=bearer(), timeout=60)
    assert response.status_code == status, response.text
    assert says in response.text


def test_a_viewer_token_is_required(api):
    base, _ = api
    assert requests.get(f"{base}/api/v1/search", params={"text": "a cat"}, timeout=60).status_code == 401
    assert (
        requests.get(
            f"{base}/api/v1/search",
            params={"text": "a cat"},
            headers=bearer("wrong-token-0123456789"),
            timeout=60,
        ).status_code
        == 401
    )


def test_no_store_to_reach_is_a_503_that_says_so_and_the_next_request_tries_again(tmp_path):
    settings = SearchSettings(
        store=StoreSettings(uri=str(tmp_path / "milvus")), encoder=EncoderSettings(kind="auto")
    )
    search = LazyFrameSearch(settings)
    server, base = serve(search, UrlSigner(SIGNING_KEY, 600))
    try:
        response = requests.get(
            f"{base}/api/v1/search", params={"text": "a cat"}, headers=bearer(), timeout=60
        )
        assert response.status_code == 503
        assert "no Vigil process has the Milvus lite directory" in response.json()["detail"]
        # The search never took the directory: a detector can still open it; then search works.
        with HitStore(settings.store.model_copy(update={"dim": search._encoder.info.dim})):
            response = requests.get(
                f"{base}/api/v1/search", params={"text": "a cat"}, headers=bearer(), timeout=60
            )
            assert response.status_code == 200 and response.json() == {"results": []}
    finally:
        server.close()
        search.close()
