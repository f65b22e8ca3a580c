"""The Hatchery Python SDK: ``Client`` and ``AsyncClient`` over httpx (nothing of the server is
imported). ::

    from hatchery.client import Client

    with Client() as client:  # HATCHERY_API_KEY, HATCHERY_BASE_URL
        task = client.generate(model="nanobanana", prompt="a lighthouse at dusk", wait=True)
        paths = client.download(task, "out")
        spent = client.usage.summary(start_date="2026-12-01")  # a UsageSummary per model

Errors are drawn in ``hatchery.client.errors``; webhooks are verified by ``verify`` (the same
function as ``hatchery.webhooks.verify``), or by ``verify_standard`` for the Standard Webhooks
headers (registered endpoints).
"""

from hatchery.client._async import AsyncClient, AsyncTasks, AsyncUsage
from hatchery.client._base import DEFAULT_BASE_URL
from hatchery.client._sync import Client, Tasks, Usage
from hatchery.client.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    HatcheryError,
    IdempotencyMismatchError,
    InsufficientBalanceError,
    InternalServerError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    TaskCancelledError,
    TaskFailedError,
    UnauthorizedError,
    UpstreamError,
    ValidationError,
    WaitTimeoutError,
)
from hatchery.client.models import (
    Account,
    Page,
    Pagination,
    Task,
    TaskEvent,
    TaskOutput,
    TaskPage,
    UsagePage,
    UsageRecord,
    UsageSummary,
    UsageTotals,
    WebhookAttempt,
    WebhookDelivery,
)
from hatchery.webhooks.signing import verify, verify_standard

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Account",
    "AsyncClient",
    "AsyncTasks",
    "AsyncUsage",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "ForbiddenError",
    "HatcheryError",
    "IdempotencyMismatchError",
    "InsufficientBalanceError",
    "InternalServerError",
    "NotFoundError",
    "Page",
    "Pagination",
    "RateLimitedError",
    "ServiceUnavailableError",
    "Task",
    "TaskCancelledError",
    "TaskEvent",
    "TaskFailedError",
    "TaskOutput",
    "TaskPage",
    "Tasks",
    "UnauthorizedError",
    "UpstreamError",
    "Usage",
    "UsagePage",
    "UsageRecord",
    "UsageSummary",
    "UsageTotals",
    "ValidationError",
    "WaitTimeoutError",
    "WebhookAttempt",
    "WebhookDelivery",
    "verify",
    "verify_standard",
]
