"""MongoDB collections of the moderation service and their indexes."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.events import Mention
from shared.mongo import Document

MENTIONS = "moderation_mentions"

INDEXES: dict[str, list[IndexModel]] = {
    MENTIONS: [IndexModel([("created_at", ASCENDING)], name="created_at")],
}


class MentionStore:
    """Every mention moderation has received, keyed by `mention_id` (so redelivery is a no-op)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._mentions = db[MENTIONS]

    async def add_many(self, mentions: Sequence[Mention]) -> int:
        """Insert the mentions not seen before, in one round trip; return how many were new."""
        if not mentions:
            return 0
        operations = [
            UpdateOne(
                {"_id": m.mention_id},
                {
                    "$setOnInsert": {
                        "mention": m.model_dump(mode="json"),
                        "created_at": m.created_at,
                    }
                },
                upsert=True,
            )
            for m in mentions
        ]
        result = await self._mentions.bulk_write(operations, ordered=False)
        return result.upserted_count

    async def get(self, mention_id: str) -> Document | None:
        return await self._mentions.find_one({"_id": mention_id})
