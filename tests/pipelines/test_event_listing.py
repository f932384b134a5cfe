"""Which alerts or hits a list request gets (pipelines/event_listing.py): every filter holds,
since included and until excluded, one page of the matches with their total."""

from __future__ import annotations

import pytest

from vigil.pipelines.event_listing import EventFacts, EventFilter, page_of

EVENTS = [
    EventFacts("gate-1", "fence", "critical", 1_000, "open"),
    EventFacts("gate-1", "cat", "info", 2_000, "acknowledged"),
    EventFacts("gate-2", "fence", "critical", 3_000, "acknowledged"),
    EventFacts("gate-2", "cat", "warning", 4_000, "open"),
]


def matching(wanted: EventFilter) -> list[int]:
    return [event.ts_ms for event in EVENTS if wanted.admits(event)]


def test_no_filter_admits_everything():
    assert matching(EventFilter()) == [1_000, 2_000, 3_000, 4_000]


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (EventFilter(camera_id="gate-2"), [3_000, 4_000]),
        (EventFilter(query_id="fence"), [1_000, 3_000]),
        (EventFilter(severity="critical"), [1_000, 3_000]),
        (EventFilter(status="open"), [1_000, 4_000]),
        (EventFilter(severity="critical", camera_id="gate-2"), [3_000]),
        (EventFilter(severity="critical", query_id="cat"), []),
    ],
)
def test_every_filter_given_must_hold(wanted, expected):
    assert matching(wanted) == expected


def test_since_is_included_and_until_excluded_so_windows_do_not_overlap():
    assert matching(EventFilter(since_ts_ms=2_000)) == [2_000, 3_000, 4_000]
    assert matching(EventFilter(until_ts_ms=3_000)) == [1_000, 2_000]
    first, second = (
        EventFilter(since_ts_ms=0, until_ts_ms=3_000),
        EventFilter(since_ts_ms=3_000, until_ts_ms=9_000),
    )
    assert matching(first) + matching(second) == matching(EventFilter())
    assert EventFilter(since_ts_ms=5, until_ts_ms=5).empty_window()
    assert not EventFilter(since_ts_ms=5, until_ts_ms=6).empty_window()
    assert not EventFilter(since_ts_ms=5).empty_window()


def test_a_page_is_a_slice_of_the_matches_with_their_total():
    items = list(range(10))
    page = page_of(items, offset=4, limit=3)
    assert (page.items, page.total, page.offset, page.limit) == ([4, 5, 6], 10, 4, 3)
    assert page_of(items, offset=8, limit=5).items == [8, 9]
    assert page_of(items, offset=10, limit=5).items == [] and page_of(items, 10, 5).total == 10
    pages = [page_of(items, offset, 3).items for offset in range(0, 10, 3)]
    assert sum(pages, []) == items


def test_a_page_refuses_a_negative_offset_or_an_empty_limit():
    with pytest.raises(ValueError, match="offset"):
        page_of([1], offset=-1, limit=1)
    with pytest.raises(ValueError, match="limit"):
        page_of([1], offset=0, limit=0)
