"""`vigil up` seeds "queries" with its config file's standing queries: only those the topic has
no record of, each with a history entry, so that an operator's edit or delete survives a restart."""

from __future__ import annotations

from vigil.services.api.query_catalog import QueryCatalog
from vigil.services.common.contract import QueryChangeMessage, QueryMessage
from vigil.services.common.kafka import (
    QueryTableReader,
    ResilientProducer,
    publish_query_change,
    seed_standing_queries,
)

SEEDER = "vigil up (vigil.yaml)"


def configured(query_id: str, text: str) -> QueryMessage:
    return QueryMessage(query_id=query_id, text=text, created_by="config", updated_ts_ms=1)


def change(action, query_id: str, query: QueryMessage | None) -> QueryChangeMessage:
    return QueryChangeMessage(query_id=query_id, action=action, by="operator-an", ts_ms=2, query=query)


def standing(kafka_settings) -> dict[str, QueryMessage]:
    with QueryTableReader(kafka_settings) as reader:
        return reader.load(timeout_s=10).snapshot()


def history(kafka_settings, query_id: str) -> list[tuple[str, str]]:
    catalog = QueryCatalog(kafka_settings, None).load()
    try:
        return [(entry.action, entry.by) for entry in catalog.history(query_id)]
    finally:
        catalog.close()


def test_a_restart_seeds_only_what_the_topic_has_no_record_of(kafka_settings):
    fence, bike = configured("fence", "a person climbing the fence"), configured("bike", "một xe máy màu đỏ")
    assert seed_standing_queries(kafka_settings, [fence, bike], SEEDER) == ["fence", "bike"]
    assert set(standing(kafka_settings)) == {"fence", "bike"}
    assert history(kafka_settings, "fence") == [("created", SEEDER)]

    # Through the API, an operator raises one threshold and deletes the other query.
    edited = fence.model_copy(update={"threshold": 0.42})
    with ResilientProducer(kafka_settings) as producer:
        publish_query_change(producer, kafka_settings.topics, change("updated", "fence", edited))
        publish_query_change(producer, kafka_settings.topics, change("deleted", "bike", None))

    # The next start seeds nothing: the edit and the delete stand, and no history is added.
    assert seed_standing_queries(kafka_settings, [fence, bike], SEEDER) == []
    now = standing(kafka_settings)
    assert set(now) == {"fence"} and now["fence"].threshold == 0.42
    assert history(kafka_settings, "fence") == [("created", SEEDER), ("updated", "operator-an")]
    assert history(kafka_settings, "bike") == [("created", SEEDER), ("deleted", "operator-an")]

    # A query added to the file later is seeded on the next start.
    cat = configured("cat", "a cat")
    assert seed_standing_queries(kafka_settings, [fence, bike, cat], SEEDER) == ["cat"]
