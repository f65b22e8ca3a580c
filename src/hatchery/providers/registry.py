"""Which providers this server has: ``local`` always, and each vendor whose credentials are set.
Built once at start-up from the settings; the catalog is checked against it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import httpx

from hatchery.domain.catalog import Catalog, CatalogError, Model
from hatchery.providers.base import IMAGE_SIZES, Job, Provider
from hatchery.providers.comfyui import ComfyUIProvider
from hatchery.providers.elevenlabs import ElevenLabsProvider
from hatchery.providers.fal import FalProvider
from hatchery.providers.gemini import GeminiProvider
from hatchery.providers.inputs import InputFiles
from hatchery.providers.local import LocalProvider
from hatchery.providers.media import Fetch
from hatchery.providers.openai_images import OpenAIImagesProvider
from hatchery.providers.replicate import ReplicateProvider
from hatchery.providers.upstream import Upstream
from hatchery.providers.veo import VeoProvider
from hatchery.settings import Settings
from hatchery.storage.base import ObjectStore

# what each vendor provider needs before it exists
CREDENTIALS = {
    "gemini": "HATCHERY_GEMINI_API_KEY",
    "veo": "HATCHERY_GEMINI_API_KEY",
    "fal": "HATCHERY_FAL_KEY",
    "replicate": "HATCHERY_REPLICATE_API_TOKEN",
    "elevenlabs": "HATCHERY_ELEVENLABS_API_KEY",
    "comfyui": "HATCHERY_COMFYUI_URL",
    "openai": "HATCHERY_OPENAI_IMAGES_URL",
}


def input_files(settings: Settings, storage: ObjectStore) -> InputFiles:
    """How vendors get a job's input files: presigned URLs from an S3-compatible store (unless
    HATCHERY_VENDOR_INPUTS=inline: a store the vendors cannot reach), else the bytes (inline or
    uploaded): a local store's URLs work only inside our network."""
    sign = None
    if settings.storage_url and settings.vendor_inputs == "auto":

        async def sign(key: str, seconds: int) -> str:
            return await storage.signed_get_url(key, seconds)

    async def size(key: str) -> int | None:
        info = await storage.head(key)
        return info.size if info else None

    return InputFiles(storage.get, sign, settings.vendor_input_url_seconds, size)


def build_providers(
    settings: Settings, http: httpx.AsyncClient, fetch: Fetch, storage: ObjectStore
) -> dict[str, Provider]:
    """``storage`` holds the tools' input files."""

    def upstream(name: str, base_url: str, auth: dict[str, str]) -> Upstream:
        return Upstream(
            name,
            http,
            base_url,
            auth,
            timeout=settings.upstream_timeout,
            max_bytes=settings.upstream_max_bytes,
        )

    inputs = input_files(settings, storage)
    providers: dict[str, Provider] = {
        "local": LocalProvider(fetch, storage.get, settings.local_threads)
    }
    providers.update(_vendors(settings, upstream, inputs, fetch))
    providers.update(_self_hosted(settings, upstream, inputs, fetch))
    return providers


MakeUpstream = Callable[[str, str, dict[str, str]], Upstream]


def _vendors(
    settings: Settings, upstream: MakeUpstream, inputs: InputFiles, fetch: Fetch
) -> dict[str, Provider]:
    """The hosted vendors whose credentials are set."""
    made: dict[str, Provider] = {}
    if settings.gemini_api_key:
        google = {"x-goog-api-key": settings.gemini_api_key}
        made["gemini"] = GeminiProvider(upstream("gemini", settings.gemini_base_url, google), fetch)
        made["veo"] = VeoProvider(upstream("veo", settings.gemini_base_url, google), fetch)
    if settings.fal_key:
        fal = {"authorization": f"Key {settings.fal_key}"}
        made["fal"] = FalProvider(upstream("fal", settings.fal_base_url, fal), inputs)
    if settings.replicate_api_token:
        auth = {"authorization": f"Bearer {settings.replicate_api_token}"}
        made["replicate"] = ReplicateProvider(
            upstream("replicate", settings.replicate_base_url, auth), inputs
        )
    if settings.elevenlabs_api_key:
        key = {"xi-api-key": settings.elevenlabs_api_key}
        made["elevenlabs"] = ElevenLabsProvider(
            upstream("elevenlabs", settings.elevenlabs_base_url, key), inputs
        )
    return made


def _self_hosted(
    settings: Settings, upstream: MakeUpstream, inputs: InputFiles, fetch: Fetch
) -> dict[str, Provider]:
    """The operator's own inference servers whose URLs are set (a bearer key when given)."""
    made: dict[str, Provider] = {}
    if settings.comfyui_url:
        auth = _bearer(settings.comfyui_token)
        made["comfyui"] = ComfyUIProvider(
            upstream("comfyui", settings.comfyui_url, auth), inputs, fetch
        )
    if settings.openai_images_url:
        auth = _bearer(settings.openai_api_key)
        made["openai"] = OpenAIImagesProvider(
            upstream("openai", settings.openai_images_url, auth), inputs, fetch
        )
    return made


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def vendors(providers: Mapping[str, Provider]) -> set[str]:
    return set(providers) - {"local"}


def check_catalog(catalog: Catalog, providers: Mapping[str, Provider]) -> None:
    """Every provider a model names exists here and knows how to make that model."""
    missing = {name: need for name, need in CREDENTIALS.items() if name not in providers}
    catalog.check_providers(set(providers), missing)
    for model in catalog.everything():
        for name in model.providers:
            problem = provider_problem(model, name, providers)
            if problem:
                raise CatalogError(problem)


def provider_problem(model: Model, name: str, providers: Mapping[str, Provider]) -> str | None:
    """Why the provider ``name`` cannot make ``model`` here (None when it can): it is not
    configured on this server, it does not make that model, or its upstream route is wrong."""
    where = f"{'tools' if model.tool_unit else 'models'}.{model.name}"
    provider = providers.get(name)
    if provider is None:
        need = f" (it needs {CREDENTIALS[name]})" if name in CREDENTIALS else ""
        have = ", ".join(sorted(providers))
        return f"{where}.providers names {name}, not configured on this server{need}; it has {have}"
    if not provider.serves(model.name):
        return f"{where}.providers names {name}, which does not make {model.name!r}"
    problem = provider.route_problem(model.name, model.routes.get(name))
    return f"{where}.upstream.{name}: {problem}" if problem else None


def nearest_size(wanted: str, sizes: frozenset[str]) -> str:
    """Of the image sizes a provider makes, the one nearest ``wanted`` (the smaller on a tie)."""
    rank = IMAGE_SIZES.index(wanted)
    return min(sizes, key=lambda size: (abs(IMAGE_SIZES.index(size) - rank), size))


def fitted(provider: Provider, job: Job) -> Job:
    """The job as ``provider`` makes it: an image job at the nearest size it makes, when it
    cannot make the size asked for (what was made is recorded with the output)."""
    if job.tool is not None:  # tools take an aspect ratio, not a size
        return job
    sizes = provider.image_sizes(job.model)
    if job.kind != "image" or job.resolution in sizes or not sizes:
        return job
    return replace(job, resolution=nearest_size(job.resolution, sizes))


def servable(model: Model, providers: Mapping[str, Provider], job: Job) -> tuple[list[str], str]:
    """The model's providers that can make the job's values, and why the others cannot
    (``"duration must be 4, 6 or 8 seconds (veo, fal)"``). In catalog order, except that those
    that make the image size asked for come before those that would make the nearest one."""
    job = replace(job, routes=model.routes)
    reasons = {name: providers[name].unsupported(job) for name in model.providers}
    usable = [name for name, reason in reasons.items() if reason is None]
    usable.sort(key=lambda name: fitted(providers[name], job) != job)
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        if reason is not None:
            by_reason.setdefault(reason, []).append(name)
    why = "; ".join(f"{reason} ({', '.join(names)})" for reason, names in by_reason.items())
    return usable, why
