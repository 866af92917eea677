"""Everything a process keeps in Redis or on disk, opened once from Settings (API and workers alike)."""

from dataclasses import dataclass

from core.settings import Settings
from core.store.catalog import CatalogStore
from core.store.connection import connect, redis_url
from core.store.files import JobResults, LocalStorage, ResultStorage
from core.store.jobs import JobStore
from core.store.pending import PendingJobs
from core.store.picture_cache import PictureCache
from core.store.render_stats import RenderStats
from core.store.uploads import UploadRegistry
from core.store.webhook_outbox import WebhookOutbox
from core.store.workers import WorkerRegistry


@dataclass(frozen=True)
class Stores:
    jobs: JobStore
    catalog: CatalogStore
    workers: WorkerRegistry
    results: JobResults
    uploads: ResultStorage
    upload_records: UploadRegistry
    webhooks: WebhookOutbox
    pending: PendingJobs  # queued jobs by batch key
    cache: PictureCache
    render_stats: RenderStats

    @classmethod
    def from_settings(cls, settings: Settings) -> "Stores":
        redis = connect(redis_url(settings))
        results = JobResults(settings.storage_dir)
        return cls(
            jobs=JobStore(redis, settings.retention_seconds),
            catalog=CatalogStore(redis),
            workers=WorkerRegistry(redis),
            results=results,
            uploads=LocalStorage(settings.upload_dir),
            upload_records=UploadRegistry(redis, settings.upload_retention_seconds),
            webhooks=WebhookOutbox(redis),
            pending=PendingJobs(redis),
            cache=PictureCache(
                LocalStorage(settings.cache_dir),
                results.pictures,
                settings.cache_max_bytes,
                max_idle_seconds=settings.retention_seconds,
                grace_seconds=settings.job_time_limit,
            ),
            render_stats=RenderStats(redis),
        )
