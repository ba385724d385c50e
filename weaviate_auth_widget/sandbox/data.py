"""The little data the Weaviate double serves: one class, a few objects, one query shape.

Enough for a session or the official client to do something real after login; it
is not a database and answers only ``{ Get { Article(limit: N) { fields } } }``.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

CLASS = "Article"
FIELDS = ("title", "body")


def _property(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "dataType": ["text"],
        "indexFilterable": True,
        "indexRangeFilters": False,
        "indexSearchable": True,
        "tokenization": "word",
    }


#: Shaped like a Weaviate 1.3x ``GET /v1/schema`` answer, so the official client parses it.
SCHEMA: dict[str, Any] = {
    "classes": [
        {
            "class": CLASS,
            "description": "A sandbox article",
            "invertedIndexConfig": {
                "bm25": {"b": 0.75, "k1": 1.2},
                "cleanupIntervalSeconds": 60,
                "stopwords": {"additions": None, "preset": "en", "removals": None},
                "usingBlockMaxWAND": True,
            },
            "multiTenancyConfig": {
                "autoTenantActivation": False,
                "autoTenantCreation": False,
                "enabled": False,
            },
            "properties": [_property("title"), _property("body")],
            "replicationConfig": {
                "asyncEnabled": False,
                "deletionStrategy": "NoAutomatedResolution",
                "factor": 1,
            },
            "shardingConfig": {
                "actualCount": 1,
                "actualVirtualCount": 128,
                "desiredCount": 1,
                "desiredVirtualCount": 128,
                "function": "murmur3",
                "key": "_id",
                "strategy": "hash",
                "virtualPerPhysical": 128,
            },
            "vectorIndexConfig": {
                "skip": False,
                "cleanupIntervalSeconds": 300,
                "maxConnections": 32,
                "efConstruction": 128,
                "ef": -1,
                "dynamicEfMin": 100,
                "dynamicEfMax": 500,
                "dynamicEfFactor": 8,
                "vectorCacheMaxObjects": 1000000000000,
                "flatSearchCutoff": 40000,
                "distance": "cosine",
                "filterStrategy": "sweeping",
                "pq": {
                    "enabled": False,
                    "bitCompression": False,
                    "segments": 0,
                    "centroids": 256,
                    "trainingLimit": 100000,
                    "encoder": {"type": "kmeans", "distribution": "log-normal"},
                },
                "bq": {"enabled": False},
                "sq": {"enabled": False, "trainingLimit": 100000, "rescoreLimit": 20},
            },
            "vectorIndexType": "hnsw",
            "vectorizer": "none",
        }
    ]
}


def seed_objects() -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {
            "class": CLASS,
            "id": "9f0b3c1e-6a35-4d1f-9a0e-0d1c8f4b2a01",
            "properties": {"title": "Hello, Weaviate", "body": "Signed in from a notebook."},
            "creationTimeUnixMs": now,
            "lastUpdateTimeUnixMs": now,
        },
        {
            "class": CLASS,
            "id": "9f0b3c1e-6a35-4d1f-9a0e-0d1c8f4b2a02",
            "properties": {"title": "Tokens expire", "body": "Refresh them before they do."},
            "creationTimeUnixMs": now,
            "lastUpdateTimeUnixMs": now,
        },
    ]


def new_object(body: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a created object (ValueError when it does not fit the schema)."""
    cls = body.get("class")
    if cls != CLASS:
        raise ValueError(f"class '{cls}' not found in schema")
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValueError("properties must be an object")
    unknown = sorted(set(properties) - set(FIELDS))
    if unknown:
        raise ValueError(f"no such prop with name '{unknown[0]}' found in class '{CLASS}' in the schema")
    now = int(time.time() * 1000)
    object_id = body.get("id") if isinstance(body.get("id"), str) else str(uuid.uuid4())
    return {
        "class": CLASS,
        "id": object_id,
        "properties": properties,
        "creationTimeUnixMs": now,
        "lastUpdateTimeUnixMs": now,
    }


_GET = re.compile(
    r"^\s*(?:query\s*\w*\s*)?\{\s*Get\s*\{\s*(?P<cls>\w+)\s*(?:\(\s*limit\s*:\s*(?P<limit>\d+)\s*\))?"
    r"\s*\{(?P<fields>[^{}]*(?:\{[^{}]*\}[^{}]*)?)\}\s*\}\s*\}\s*$"
)
_ADDITIONAL = re.compile(r"_additional\s*\{([^{}]*)\}")


def graphql(query: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """A GraphQL-shaped answer: ``data`` for the one supported query, ``errors`` otherwise."""
    match = _GET.match(query)
    if match is None:
        return {"errors": [{"message": "the sandbox answers only { Get { Article { ... } } } queries"}]}
    if match["cls"] != CLASS:
        return {"errors": [{"message": f'Cannot query field "{match["cls"]}" on type "GetObjectsObj".'}]}
    field_text = match["fields"]
    additional: list[str] = []
    extra = _ADDITIONAL.search(field_text)
    if extra:
        additional = extra.group(1).split()
        field_text = field_text[: extra.start()] + field_text[extra.end() :]
    fields = field_text.replace(",", " ").split()
    for name, allowed, owner in [
        *((f, FIELDS, CLASS) for f in fields),
        *((a, ("id",), f"{CLASS}AdditionalFields") for a in additional),
    ]:
        if name not in allowed:
            return {"errors": [{"message": f'Cannot query field "{name}" on type "{owner}".'}]}
    limit = int(match["limit"]) if match["limit"] else None
    rows = []
    for obj in objects[:limit]:
        row: dict[str, Any] = {name: obj["properties"].get(name) for name in fields}
        if additional:
            row["_additional"] = {"id": obj["id"]}
        rows.append(row)
    return {"data": {"Get": {CLASS: rows}}}
