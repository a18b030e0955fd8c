"""MongoDB access through PyMongo's async API, and per-service index bootstrap.

Each service owns its collections (named in its `storage.py`) and declares their indexes there;
`ensure_indexes` creates them at start, so a fresh database is ready without a migration step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import Settings

Document = dict[str, Any]
DUPLICATE_KEY = 11000


async def insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> set[Any]:
    """Insert all, unordered; return the `_id`s that existed already.

    Plain `_id` inserts are what a MongoDB server does fastest, and a duplicate key is how the
    services learn "seen before" (de-duplication, idempotent consumers): not an error here.
    """
    if not documents:
        return set()
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return {documents[error["index"]]["_id"] for error in errors}
    return set()


def create_mongo_client(settings: Settings, app_name: str) -> AsyncMongoClient[Document]:
    """A client with bounded timeouts, so a missing database fails readiness, not a hang."""
    timeout = settings.mongodb_timeout_ms
    return AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(),
        appname=f"smm-{app_name}",
        tz_aware=True,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(timeout * 6, 30_000),
        retryWrites=True,
    )


def service_database(
    client: AsyncMongoClient[Document], settings: Settings
) -> AsyncDatabase[Document]:
    return client[settings.mongodb_database]


async def ensure_indexes(
    db: AsyncDatabase[Document], indexes: Mapping[str, Sequence[IndexModel]]
) -> None:
    """Create the declared indexes (creating an existing index is a no-op)."""
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


async def ping(client: AsyncMongoClient[Document]) -> None:
    """Raise unless the server answers."""
    await client.admin.command("ping")
