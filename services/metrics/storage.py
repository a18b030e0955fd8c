"""MongoDB collections of the metrics service and their indexes."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.events import ClassifiedMention
from shared.mongo import Document

MENTIONS = "metrics_mentions"

INDEXES: dict[str, list[IndexModel]] = {
    MENTIONS: [
        IndexModel([("tracker_ids", ASCENDING), ("created_at", ASCENDING)], name="tracker_time")
    ],
}


class MentionFacts:
    """One document per classified mention: what the KPIs count, stored once per mention_id."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._mentions = db[MENTIONS]

    async def add_many(self, mentions: Sequence[ClassifiedMention]) -> int:
        if not mentions:
            return 0
        operations = [
            UpdateOne(
                {"_id": m.mention_id},
                {
                    "$setOnInsert": {
                        "tracker_ids": m.tracker_ids,
                        "created_at": m.created_at,
                        "platform": m.platform,
                        "author": {"id": m.author.id, "followers": m.author.followers},
                        "sentiment": m.classification.sentiment,
                        "action": m.action,
                    }
                },
                upsert=True,
            )
            for m in mentions
        ]
        result = await self._mentions.bulk_write(operations, ordered=False)
        return result.upserted_count

    async def count(self, tracker_id: str) -> int:
        return await self._mentions.count_documents({"tracker_ids": tracker_id})
