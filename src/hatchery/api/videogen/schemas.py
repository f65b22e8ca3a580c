"""Request bodies of the VideoGen API, as the contract gives them (camelCase; unknown fields are
refused with a message that names them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FileTypeName = Literal["IMAGE", "VIDEO", "AUDIO"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def whole_numbers(cls, value: Any) -> Any:
        """JSON's whole numbers as JSON Schema counts them (``3`` and ``3.0``) for integer
        fields; strict mode refuses anything else of another type."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class CreateFileUpload(Body):
    displayName: str = Field(min_length=1, max_length=512)
    type: FileTypeName | None = None
    isTemporary: bool | None = False


class SearchFiles(Body):
    query: str = Field(min_length=1, max_length=1000)
    numResults: int | None = Field(default=10, ge=1, le=100)
    selfOnly: bool | None = False
