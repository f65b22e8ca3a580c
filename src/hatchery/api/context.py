"""What every route of every dialect takes from its request: the process's services."""

from __future__ import annotations

from starlette.requests import Request

from hatchery.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
