"""Request bodies of the VideoGen API, as the contract gives them (camelCase; unknown fields are
refused with a message that names them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class TextBody(Body):
    """A body whose text is kept as it is given (a name, a description): no NUL character,
    which no database keeps as text."""

    @field_validator("*", mode="before")
    @classmethod
    def no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


class CreateFileUpload(TextBody):
    displayName: str = Field(min_length=1, max_length=512)
    type: FileTypeName | None = None
    isTemporary: bool | None = False


class SearchFiles(TextBody):
    query: str = Field(min_length=1, max_length=1000)
    numResults: int | None = Field(default=10, ge=1, le=100)
    selfOnly: bool | None = False


# ------------------------------------------------------------------------------------ tools
# Limits the contract leaves open (§7.10), written down in docs/videogen.md.
PROMPT_CHARS = 4000
TTS_CHARS = 5000
REFERENCE_IMAGES = 4
REPLACEMENTS = 100

WatermarkMode = Literal["NONE", "VIDEO_GEN", "AUTO"]


class AspectRatio(Body):
    """A ratio, not pixels: ``{"width": 16, "height": 9}``."""

    width: int = Field(ge=1, le=10_000)
    height: int = Field(ge=1, le=10_000)


class ToolBody(Body):
    """The fields every tool takes."""

    numResults: int | None = Field(default=1, ge=1, le=100)
    isOutputTemporary: bool | None = False


class MarkedToolBody(ToolBody):
    """A tool whose image or video outputs may carry a watermark."""

    watermarkMode: WatermarkMode | None = "AUTO"


class GenerateImage(MarkedToolBody):
    prompt: str = Field(min_length=1, max_length=PROMPT_CHARS)
    imageFileIds: list[str] | None = Field(default=None, max_length=REFERENCE_IMAGES)
    aspectRatio: AspectRatio | None = None


class GenerateVideoClip(MarkedToolBody):
    prompt: str | None = Field(default=None, max_length=PROMPT_CHARS)
    imageFileIds: list[str] | None = Field(default=None, max_length=REFERENCE_IMAGES)
    videoFileId: str | None = None
    generateAudio: bool | None = False
    aspectRatio: AspectRatio | None = None
    durationSeconds: int | None = Field(default=None, ge=1, le=15)  # G2's, a superset

    @model_validator(mode="after")
    def something_to_work_from(self) -> GenerateVideoClip:
        if not (self.prompt or self.imageFileIds or self.videoFileId):
            raise ValueError("give at least one of prompt, imageFileIds and videoFileId")
        return self


class PronunciationReplacement(Body):
    original: str = Field(min_length=1, max_length=200)
    replacement: str = Field(max_length=200)


class TextToSpeech(ToolBody):
    ttsText: str = Field(min_length=1, max_length=TTS_CHARS)
    voiceId: str | None = None
    speechLanguageCode: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z]{2})?$"
    )
    pronunciationReplacements: list[PronunciationReplacement] | None = Field(
        default=None, max_length=REPLACEMENTS
    )
    autoExpandPronunciationReplacements: bool | None = False
    voiceSpeed: float | None = Field(default=None, ge=0.5, le=4.0)


class GenerateSoundEffect(ToolBody):
    prompt: str = Field(min_length=1, max_length=PROMPT_CHARS)
    durationSeconds: float | None = Field(default=None, ge=0.5, le=30)
    promptInfluence: float | None = Field(default=None, ge=0, le=1)


class GenerateAvatar(MarkedToolBody):
    avatarPresenterId: str = Field(min_length=1, max_length=64)
    audioStorageFileId: str = Field(min_length=1, max_length=64)


class ImageAsset(MarkedToolBody):
    imageStorageFileId: str = Field(min_length=1, max_length=64)


class VideoAsset(MarkedToolBody):
    videoStorageFileId: str = Field(min_length=1, max_length=64)


TOOL_BODIES: dict[str, type[ToolBody]] = {
    "generate-image": GenerateImage,
    "generate-video-clip": GenerateVideoClip,
    "text-to-speech": TextToSpeech,
    "generate-sound-effect": GenerateSoundEffect,
    "generate-avatar": GenerateAvatar,
    "vectorize-image": ImageAsset,
    "remove-image-background": ImageAsset,
    "remove-video-background": VideoAsset,
    "upscale-image": ImageAsset,
    "upscale-video": VideoAsset,
}


# --------------------------------------------------------------------------------- webhooks
class CreateWebhookEndpoint(TextBody):
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=1024)
