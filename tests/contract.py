"""Field lists of the wire contract (seeds 001-003), in the seeds' order. The webhook payloads
also carry ``type`` after ``model`` (image_generate, image_edit, video_generate): a field the
seeds do not show, added so that a receiver can tell an edit from a generation."""

TASK_FIELDS = [
    "id",
    "status",
    "model",
    "type",
    "output",
    "error",
    "cost",
    "created_at",
    "started_at",
    "completed_at",
]
COMPLETED_EVENT_FIELDS = [
    "event",
    "task_id",
    "status",
    "model",
    "type",
    "output",
    "error",
    "cost",
    "timestamp",
]
FAILED_EVENT_FIELDS = [
    "event",
    "task_id",
    "status",
    "model",
    "type",
    "error",
    "cost",
    "timestamp",
]
