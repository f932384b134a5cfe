"""The operators' console in a real browser (Debian's chromium, driven by Playwright) against a
real pipeline: `vigil up` on real RTSP footage with a cat and a motorcycle pasted in.

In order, as an operator through a shift: sign in with a token; register a standing query in
the editor (a refused one first: the API's message shows next to its field); watch the cat's
alert arrive on the live stream with its thumbnail (and region box) and the time in the
browser's time zone; load and play its spoken alert; acknowledge it; look at the camera grid;
search the footage and open a moment; switch to Vietnamese; sign out. Screenshots of each step
are test artifacts under var/test-artifacts/console/ (printed at the end).

The tests of this module share one pipeline and one page, and run in this order.
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests
from console_support import OPERATOR, TOKENS
from PIL import Image, ImageStat

from vigil.pipelines.alerting import WEEKDAYS

# Not the machine's zone: the console must show times in the browser's.
BROWSER_ZONE = "Asia/Ho_Chi_Minh"
# From the services' start: the cat is shown 22-27 s into the stream (conftest.EVENTS).
ALERT_TIMEOUT_MS = 120_000
_state: dict = {}


@pytest.fixture(scope="module")
def page(browser, pipeline, screenshots):
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000}, timezone_id=BROWSER_ZONE, locale="en-GB"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    # Failed loads (a route another slice builds answering 404) are the page's business, not errors.
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and "Failed to load resource" not in message.text
            and errors.append(message.text)
        ),
    )
    page.errors = errors
    yield page
    screenshots(page, "99-last")  # where the page was when the tests ended, passed or not
    if errors:
        print("errors in the page:", *errors, sep="\n  ")
    context.close()


def test_signs_in_with_a_token_and_says_who_you_are(page, pipeline, screenshots):
    page.goto(pipeline.base_url + "/")
    assert page.url == pipeline.base_url + "/console/"  # / redirects to the console
    page.fill("#token-input", "not-a-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('not accepted')")
    page.fill("#token-input", TOKENS[OPERATOR])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#whoami:has-text('olga (operator)')")
    assert page.evaluate("sessionStorage.getItem('vigil.console.token')") == TOKENS[OPERATOR]
    page.wait_for_selector("#feed-connection.connection-live")
    screenshots(page, "01-signed-in")


def test_registers_a_standing_query_through_the_editor(page, pipeline, screenshots):
    page.click("#nav a[data-tab=queries]")
    page.click("#query-new")
    page.fill("#query-query_id", "xe-may")
    page.fill("#query-text", "một chiếc xe máy")
    page.select_option("#query-severity", "critical")
    page.check("input[name=thresholdMode][value=fixed]")
    page.fill("#query-threshold", "2")  # out of range: the API refuses, naming the field
    page.check("input[name=scheduleMode][value=windows]")
    page.fill("#query-armed", "mon 25:00-26:00")  # not a time of day: refused next to the schedule
    page.click("#query-save")
    refusal = page.wait_for_selector("#query-threshold-error")
    assert "threshold" in refusal.inner_text().lower() or "1" in refusal.inner_text()
    assert "time of day" in page.inner_text("#query-schedule-error")
    screenshots(page, "02-query-refused")
    page.check("input[name=thresholdMode][value=auto]")
    page.fill("#query-armed", "00:00-24:00")  # armed all day, every day: the alert below still comes
    page.fill("#query-timezone", "Asia/Ho_Chi_Minh")
    page.click("#query-save")
    page.wait_for_selector("#query-table tr[data-query-id=xe-may]")
    shown = page.inner_text("#query-table tr[data-query-id=xe-may] .query-schedule")
    assert shown == "armed 00:00-24:00 (Asia/Ho_Chi_Minh)"
    queries = pipeline.get("/api/v1/queries").json()["queries"]
    registered = next(q for q in queries if q["query_id"] == "xe-may")
    assert registered["text"] == "một chiếc xe máy" and registered["severity"] == "critical"
    assert registered["threshold"] == "auto" and registered["created_by"] == OPERATOR
    assert registered["schedule"]["timezone"] == "Asia/Ho_Chi_Minh"
    assert registered["schedule"]["armed"] == [{"days": list(WEEKDAYS), "start": "00:00", "end": "24:00"}]
    page.click("#query-table tr[data-query-id=xe-may] button:has-text('History')")
    page.wait_for_selector("#query-history li:has-text('created')")
    _state["query_registered"] = True
    screenshots(page, "02-query-registered")


def test_an_alert_from_the_pipeline_arrives_live_with_its_thumbnail_and_box(page, pipeline, screenshots):
    page.click("#nav a[data-tab=alerts]")
    arrived = page.wait_for_selector(
        ".alert-card[data-arrived=live][data-alert-id*=':cat:']", timeout=ALERT_TIMEOUT_MS
    )
    alert_id = arrived.get_attribute("data-alert-id")
    card = page.locator(f".alert-card[data-alert-id='{alert_id}']")  # re-found after each re-render
    card.locator(".frame img").evaluate(
        "img => img.complete ? null : new Promise(done => img.addEventListener('load', done, { once: true }))"
    )
    assert card.locator(".frame img").evaluate("img => img.naturalWidth") > 0
    view = pipeline.get(f"/api/v1/alerts/{alert_id}").json()
    assert card.locator(".alert-query").inner_text() == "a cat"
    assert card.locator(".alert-camera").inner_text() == "hall"
    assert card.locator(".badge.severity-warning").inner_text() == "Warning"
    peak = datetime.fromtimestamp(view["alert"]["peak_ts_ms"] / 1000, ZoneInfo(BROWSER_ZONE))
    assert peak.strftime("%H:%M:%S") in card.locator(".alert-time").inner_text()
    assert card.locator(".alert-score").inner_text() == f"{view['alert']['peak_score']:.2f}"
    if view["alert"].get("box") is not None:
        # The region box is drawn over the thumbnail, placed in fractions of the picture.
        x0, y0, x1, y1 = view["alert"]["box"]
        placed = card.locator(".frame-box").evaluate(
            "b => [b.style.left, b.style.top, b.style.width, b.style.height].map(parseFloat)"
        )
        assert placed == pytest.approx([x0 * 100, y0 * 100, (x1 - x0) * 100, (y1 - y0) * 100], abs=0.01)
    _state["alert_id"] = alert_id
    if _state.get("query_registered"):
        # The query registered in the editor reaches the detector live and raises its own alert.
        page.wait_for_selector(".alert-card[data-alert-id*=':xe-may:']", timeout=ALERT_TIMEOUT_MS)
    screenshots(page, "03-alert-arrived")


def test_its_spoken_alert_loads_and_plays(page, pipeline):
    card = page.locator(f".alert-card[data-alert-id='{_state['alert_id']}']")
    audio = card.locator("audio.alert-audio")
    duration = audio.evaluate(
        """audio => new Promise((resolve, reject) => {
            audio.addEventListener("canplay", () => resolve(audio.duration), { once: true });
            const fail = () => reject(new Error("audio error " + audio.error.code));
            audio.addEventListener("error", fail, { once: true });
            audio.preload = "auto";
            audio.load();
        })"""
    )
    assert duration > 0.5, duration
    spoken = requests.get(audio.get_attribute("src"), timeout=10)  # the signed link needs no token
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF" and len(spoken.content) > 10_000
    card.locator("button.play").click()
    page.wait_for_function(
        "id => document.querySelector(`.alert-card[data-alert-id='${id}'] audio`).currentTime > 0",
        arg=_state["alert_id"],
        timeout=10_000,
    )


def test_acknowledges_it_and_shows_who(page, pipeline, screenshots):
    alert_id = _state["alert_id"]
    card = page.locator(f".alert-card[data-alert-id='{alert_id}']")
    card.locator("button.acknowledge").click()
    card.locator(".alert-status:has-text('Acknowledged by olga')").wait_for()
    assert card.locator("button.acknowledge").count() == 0
    record = pipeline.get(f"/api/v1/alerts/{alert_id}").json()
    assert record["status"] == "acknowledged" and record["acknowledged_by"] == OPERATOR
    screenshots(page, "04-acknowledged")


def test_the_camera_grid_shows_health_and_the_latest_snapshot(page, pipeline, screenshots):
    page.click("#nav a[data-tab=cameras]")
    card = page.wait_for_selector(".camera-card[data-camera-id=hall]")
    assert card.query_selector(".badge.state-streaming, .badge.state-connecting, .badge.state-stalled")
    # The snapshot: the API's follower of "frames" wakes on the first request, so a grid drawn
    # before it had a frame shows the next one on a refresh (the tab refreshes by itself too).
    loaded = "() => { const i = document.querySelector('.camera-card[data-camera-id=hall] img');"
    loaded += " return !!i && i.complete && i.naturalWidth > 0; }"
    deadline = time.monotonic() + 20
    while not page.evaluate(loaded):
        assert time.monotonic() < deadline, "the camera's latest snapshot never loaded"
        page.wait_for_timeout(1000)
        page.click("#cameras-view .toolbar button")
    source = page.evaluate("() => document.querySelector('.camera-card[data-camera-id=hall] img').src")
    snapshot = Image.open(io.BytesIO(requests.get(source, timeout=10).content))
    assert snapshot.format == "JPEG" and ImageStat.Stat(snapshot.convert("L")).mean[0] > 20, "a black frame"
    screenshots(page, "05-cameras")


def test_a_search_shows_thumbnails_and_opens_the_moment(page, pipeline, screenshots):
    page.click("#nav a[data-tab=search]")
    page.fill("#search-text", "a cat")
    page.click("#search-form button[type=submit]")
    results = page.wait_for_selector("#search-results")
    first = results.query_selector(".search-result .frame img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first)
    screenshots(page, "06-search-results")
    results.query_selector(".search-result").click()
    page.wait_for_selector(
        "#moment-dialog[open] .moment-strip .frame img, #moment-dialog[open] #moment-unavailable"
    )
    screenshots(page, "06-moment")
    page.click("#moment-dialog button.close")


def test_switches_to_vietnamese_and_remembers_it(page, pipeline, screenshots):
    page.click("#nav a[data-tab=alerts]")
    page.click("[data-language=vi]")
    assert page.evaluate("document.documentElement.lang") == "vi"
    assert page.inner_text("#nav a[data-tab=alerts]") == "Cảnh báo"
    assert page.inner_text("#nav a[data-tab=queries]") == "Truy vấn thường trực"
    assert page.inner_text("#logout") == "Đăng xuất"
    page.wait_for_selector("#whoami:has-text('olga (điều hành viên)')")
    card = f".alert-card[data-alert-id='{_state['alert_id']}']"
    page.wait_for_selector(f"{card} .alert-status:has-text('olga đã xác nhận lúc')")
    assert page.inner_text(f"{card} .badge.severity-warning") == "Cảnh báo"
    page.reload()  # the language stays (localStorage), and so does the sign-in (sessionStorage)
    page.wait_for_selector("#whoami:has-text('olga (điều hành viên)')")
    assert page.inner_text("#nav a[data-tab=search]") == "Tìm kiếm"
    # Every string has both languages.
    incomplete = page.evaluate(
        """async () => {
            const { STRINGS } = await import("/console/strings.js");
            return Object.entries(STRINGS).filter(([, s]) => !s.en || !s.vi).map(([key]) => key);
        }"""
    )
    assert incomplete == []
    screenshots(page, "07-vietnamese")


def test_signs_out_and_forgets_the_token(page):
    page.click("#logout")
    page.wait_for_selector("#login-view:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('vigil.console.token')") is None
    assert re.search(r"Đăng nhập", page.inner_text("#login-view"))
    assert page.errors == [], page.errors
