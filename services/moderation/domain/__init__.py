"""Pure moderation logic: no broker, database or web imports here."""

from __future__ import annotations

from pydantic import ConfigDict

from shared.events import Model


class StrictModel(Model):
    """For what people write through the API: a misspelt field is an error, not ignored."""

    model_config = ConfigDict(**{**Model.model_config, "extra": "forbid"})
