"""Field lists of the wire contract (seeds 001-003), in the seeds' order."""

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
    "output",
    "error",
    "cost",
    "timestamp",
]
FAILED_EVENT_FIELDS = ["event", "task_id", "status", "model", "error", "cost", "timestamp"]
