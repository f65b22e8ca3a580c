"""Reading uploaded and generated media and making its renditions, synchronously, on local files
(the file-ingest job calls it in a thread): :func:`inspect` says what the bytes are,
:func:`thumbnail`, :func:`preview` and :func:`hls` make the renditions. Pillow and PyAV only."""

from hatchery.media.probe import MediaInfo, NotMedia, inspect
from hatchery.media.renditions import MAX_SECONDS, Rendition, TooLong, hls, preview, thumbnail

__all__ = [
    "MAX_SECONDS",
    "MediaInfo",
    "NotMedia",
    "Rendition",
    "TooLong",
    "hls",
    "inspect",
    "preview",
    "thumbnail",
]
