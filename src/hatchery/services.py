"""The objects one server process is made of, built once from :class:`Settings` and passed down."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import partial

import httpx

from hatchery.admin.routes import RouteBook
from hatchery.domain.catalog import Catalog
from hatchery.domain.moderation import DenyList
from hatchery.files.library import FileLibrary
from hatchery.net.guard import guarded_request
from hatchery.observe import tracing
from hatchery.providers.base import Provider
from hatchery.providers.registry import build_providers, check_catalog, vendors
from hatchery.settings import Settings
from hatchery.storage import ObjectStore, UrlSigner, load_secret, open_store
from hatchery.storage.traced import TracedStore
from hatchery.store.db import Database
from hatchery.store.keycache import KeyCache
from hatchery.store.notify import Notifier
from hatchery.store.queue import TaskQueue
from hatchery.store.webhooks import WebhookOutbox, WebhookRegistry

USER_AGENT = "hatchery/0.1 (+https://github.com/hatchery)"

# httpcore asks ``import sniffio`` which event loop runs, several times per request; without
# sniffio installed every one of those is a failed import that searches sys.path (a tenth of a
# busy worker's CPU, polling thousands of upstream jobs). A module recorded as None fails at once,
# exactly as a missing one does.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


@dataclass
class Services:
    settings: Settings
    db: Database
    notifier: Notifier
    keys: KeyCache
    queue: TaskQueue
    outbox: WebhookOutbox
    webhooks: WebhookRegistry
    catalog: Catalog
    routes: RouteBook  # the catalog's routes, kept in the database
    providers: dict[str, Provider]
    storage: ObjectStore
    signer: UrlSigner
    files: FileLibrary
    denylist: DenyList
    http: httpx.AsyncClient
    upstream_http: httpx.AsyncClient

    @classmethod
    def build(cls, settings: Settings, http: httpx.AsyncClient | None = None) -> Services:
        client = http or httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, trust_env=False)
        # Upstream vendors get their own pool: thousands of jobs in flight poll through it.
        upstream_http = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )
        signer = UrlSigner(
            load_secret(settings.data_dir, settings.storage_secret), settings.public_url
        )
        storage = open_store(settings, signer)
        if tracing.enabled():
            storage = TracedStore(storage)
        providers = build_providers(
            settings, upstream_http, partial(fetch_reference, client, settings), storage
        )
        catalog = Catalog.load(settings.catalog, vendors(providers))
        check_catalog(catalog, providers)
        denylist = DenyList.load(settings.moderation_denylist)
        db = Database.connect(settings.database_url, pool_size=settings.database_pool_size)
        notifier = Notifier()
        key_cache = KeyCache(db.driver, settings.key_cache_seconds)
        notifier.on_keys_changed(key_cache.forget)
        return cls(
            settings=settings,
            db=db,
            notifier=notifier,
            keys=key_cache,
            queue=TaskQueue(
                db, notifier, public_url=settings.public_url, lease_seconds=settings.lease_seconds
            ),
            outbox=WebhookOutbox(
                db,
                notifier,
                lease_seconds=2 * max(settings.webhook_timeout, settings.webhook_endpoint_timeout),
                per_target=settings.webhook_per_receiver,
                disable_after=settings.webhook_disable_after,
            ),
            webhooks=WebhookRegistry(db, notifier),
            catalog=catalog,
            routes=RouteBook(
                db,
                catalog,
                providers,
                notifier,
                refresh_every=settings.routes_refresh,
                heartbeat=settings.heartbeat_interval,
            ),
            providers=providers,
            storage=storage,
            signer=signer,
            files=FileLibrary(db, storage, signer, notifier, settings),
            denylist=denylist,
            http=client,
            upstream_http=upstream_http,
        )

    async def close(self) -> None:
        await self.keys.drain()  # the records of keys' last use still being written
        await self.http.aclose()
        await self.upstream_http.aclose()
        await self.storage.close()
        await self.db.dispose()


async def fetch_reference(http: httpx.AsyncClient, settings: Settings, url: str) -> bytes:
    """Download a reference image through the URL guard (size-capped, time-limited)."""
    response = await guarded_request(
        http,
        "GET",
        url,
        allow_private=settings.allow_private_urls,
        timeout=settings.reference_timeout,
        max_bytes=settings.reference_max_bytes,
        max_redirects=5,
    )
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}")
    return response.content
