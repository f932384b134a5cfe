"""The two collections' schemas and indexes, and opening them: created on first use, checked
and loaded on every open, and migrated when an older Vigil made them.

"hits" holds one row per detected event, its primary key the contract's deterministic hit id
(so a replay after a crash overwrites instead of duplicating), with the peak region's box, if
any; "frames" holds about one frame per camera per second for retrospective search. Both
have an HNSW cosine index on the embedding and INVERTED indexes on the ids they are filtered by.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vigil.services.detector.store.connection import MilvusConnection
from vigil.services.detector.store.errors import EmbeddingDimensionError, StoreError

logger = logging.getLogger(__name__)

# The hit's peak region (HitMessage.box): ARRAY<FLOAT> of capacity 4, nullable (NULL = the
# whole frame, and what hits written before boxes existed read as).
BOX_FIELD = "box"
# Fields added after a collection's first release, per collection role: a collection made
# before lacks them but is otherwise ours, so it is migrated (or the error says how).
ADDED_FIELDS: dict[str, dict[str, str]] = {"hits": {BOX_FIELD: "the peak region of each hit"}}


def _added_field_params(field: str) -> dict[str, Any]:
    """An added field's schema parameters, the same for a new collection and for adding it to an
    older one (a field added to an existing collection must be nullable)."""
    from pymilvus import DataType

    if field == BOX_FIELD:
        return {
            "datatype": DataType.ARRAY,
            "element_type": DataType.FLOAT,
            "max_capacity": 4,
            "nullable": True,
        }
    raise KeyError(f"no schema parameters for the added field {field!r}")


class CollectionSchemas(MilvusConnection):
    """A mixin of HitStore: the schemas of its collections and opening them on its connection."""

    def _hits_schema(self) -> tuple[Any, Any]:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("hit_id", DataType.VARCHAR, is_primary=True, max_length=400)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.settings.dim)
        schema.add_field("camera_id", DataType.VARCHAR, max_length=128)
        schema.add_field("query_id", DataType.VARCHAR, max_length=128)
        schema.add_field("event_start_ts_ms", DataType.INT64)
        schema.add_field("peak_ts_ms", DataType.INT64)
        schema.add_field("end_ts_ms", DataType.INT64)
        schema.add_field("score", DataType.FLOAT)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=1024)
        schema.add_field("encoder", DataType.VARCHAR, max_length=128)
        schema.add_field(BOX_FIELD, **_added_field_params(BOX_FIELD))
        return schema, self._index_params(scalar_fields=("camera_id", "query_id"))

    def _frames_schema(self) -> tuple[Any, Any]:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("frame_id", DataType.VARCHAR, is_primary=True, max_length=200)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.settings.dim)
        schema.add_field("camera_id", DataType.VARCHAR, max_length=128)
        schema.add_field("ts_ms", DataType.INT64)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=1024)
        return schema, self._index_params(scalar_fields=("camera_id",))

    def _index_params(self, scalar_fields: Iterable[str]) -> Any:
        index_params = self._client.prepare_index_params()
        index_params.add_index(
            "embedding",
            index_type="HNSW",
            metric_type="COSINE",
            params={"M": self.settings.hnsw_m, "efConstruction": self.settings.hnsw_ef_construction},
        )
        for field in scalar_fields:
            # Milvus lite builds only INVERTED scalar indexes.
            index_params.add_index(field, index_type="INVERTED")
        return index_params

    def _open_collection(self, name: str, schema_and_indexes: tuple[Any, Any], role: str) -> None:
        schema, index_params = schema_and_indexes
        client, timeout = self._client, self.settings.timeout_s
        if not client.has_collection(name, timeout=timeout):
            client.create_collection(name, schema=schema, index_params=index_params, timeout=timeout)
            logger.info("created Milvus collection %s (dim %d)", name, self.settings.dim)
        else:
            self._check_existing_schema(name, schema, role)
        # A reopened collection is NotLoad and refuses searches until loaded.
        if str(client.get_load_state(name, timeout=timeout).get("state")) != "Loaded":
            client.load_collection(name, timeout=timeout)

    def _check_existing_schema(self, name: str, expected_schema: Any, role: str) -> None:
        description = self._client.describe_collection(name, timeout=self.settings.timeout_s)
        fields = {field["name"]: field for field in description["fields"]}
        missing = [field.name for field in expected_schema.fields if field.name not in fields]
        added_later = ADDED_FIELDS.get(role, {})
        if any(field not in added_later for field in missing):
            raise StoreError(
                f"Milvus collection {name!r} exists but lacks the fields {missing}: it was not made "
                "by this Vigil; configure another collection name"
            )
        if missing:
            self._add_missing_fields(name, role, missing)
        existing_dim = int(fields["embedding"]["params"]["dim"])
        if existing_dim != self.settings.dim:
            raise EmbeddingDimensionError(
                f"Milvus collection {name!r} holds {existing_dim}-d embeddings but the encoder "
                f"produces {self.settings.dim}-d ones: embeddings of different encoders cannot share "
                f"an index. Configure a new collection name (e.g. {name}_{self.settings.dim}) or "
                "switch back to the encoder that filled it"
            )

    def _add_missing_fields(self, name: str, role: str, missing: list[str]) -> None:
        """Migrate a collection made by an older Vigil: add the nullable fields it lacks.

        A Milvus server (2.6+) adds a field in place, its old rows reading NULL. Milvus lite
        3.2.2 has no AddCollectionField RPC (it answers UNIMPLEMENTED), so there the error says
        exactly what to do instead.
        """
        what = ", ".join(f"{field!r} ({ADDED_FIELDS[role][field]})" for field in missing)
        new_name = f"{name}_v2"[:255]
        if self.settings.is_lite:
            directory = str(Path(self.settings.uri).expanduser().resolve())
            code = (  # json.dumps: double-quoted Python literals, so the shell quoting stays readable
                f"from milvus_lite import MilvusLite; db = MilvusLite({json.dumps(directory)}); "
                f"db.drop_collection({json.dumps(name)}); db.close()"
            )
            drop = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
            raise StoreError(
                f"Milvus collection {name!r} in {directory} was made by an older Vigil: it lacks the "
                f"field(s) {what}, and Milvus lite cannot add a field to an existing collection. Its "
                f"rows are intact. To keep them, start a new collection beside it: set "
                f"VIGIL_MILVUS_{role.upper()}_COLLECTION={new_name} (Vigil then lists only new hits; "
                f"the old rows stay in {name!r}, untouched). To discard them, stop every Vigil "
                f"process and run: `{drop}`"
            )
        from pymilvus.exceptions import MilvusException

        for field in missing:
            params = _added_field_params(field)
            data_type = params.pop("datatype")
            try:
                self._client.add_collection_field(
                    name, field, data_type, timeout=self.settings.timeout_s, **params
                )
            except MilvusException as error:
                raise StoreError(
                    f"Milvus collection {name!r} was made by an older Vigil: it lacks the field(s) "
                    f"{what}, and the server refused to add {field!r} ({error}); Milvus 2.6 or later "
                    f"can. Or start a new collection beside it: set "
                    f"VIGIL_MILVUS_{role.upper()}_COLLECTION={new_name}"
                ) from None
            logger.warning(
                "migrated Milvus collection %s in place: added the field %r (%s); the rows written "
                "before read it as NULL",
                name,
                field,
                ADDED_FIELDS[role][field],
            )
