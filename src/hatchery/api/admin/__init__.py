"""The admin API (``/admin/v1``): the operator's dialect. Its errors are the Egg API's envelope
(``api.envelope``), mapped in ``api.app`` like the Egg API's."""

from hatchery.api.admin.routes import PREFIX, router

__all__ = ["PREFIX", "router"]
