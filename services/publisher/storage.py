"""MongoDB collections of the publisher service and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.events import ApproveCommand, CancelCommand, RescheduleCommand, ScheduleCommand
from shared.mongo import Document

COMMANDS = "publisher_commands"

INDEXES: dict[str, list[IndexModel]] = {
    COMMANDS: [IndexModel([("post_id", ASCENDING), ("received_at", ASCENDING)], name="post")],
}

AnyPostCommand = ScheduleCommand | RescheduleCommand | CancelCommand | ApproveCommand


class CommandInbox:
    """Every post command received, once per `event_id` (redelivery is a no-op)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._commands = db[COMMANDS]

    async def add(self, command: AnyPostCommand) -> bool:
        """Record the command; False when it was already recorded."""
        document = command.model_dump(mode="json")
        document["_id"] = str(command.event_id)
        document["received_at"] = command.occurred_at
        try:
            await self._commands.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def for_post(self, post_id: str) -> list[Document]:
        return await self._commands.find({"post_id": post_id}).sort("received_at").to_list(1000)
