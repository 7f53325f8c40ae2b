"""The base of every params section (pipeline/params.py) and of the model's own config classes:
a frozen pydantic model where an unknown key is an error and every value is validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every params section: unknown keys are an error, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
