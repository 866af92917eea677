"""Everything a process keeps in Redis or in object storage (a local directory or an S3 bucket), opened once
from Settings (API and workers alike)."""

from dataclasses import dataclass

from core.settings import Settings
from core.store.catalog import CatalogStore
from core.store.connection import connect, redis_url
from core.store.datasets import ImageSets
from core.store.example_indexes import ExampleIndexes
from core.store.files import JobResults, KeyedFiles
from core.store.job_events import JobPreviews
from core.store.jobs import JobStore
from core.store.last_use import LastUse
from core.store.objects import object_storages
from core.store.pending import PendingJobs
from core.store.picture_cache import PictureCache
from core.store.render_stats import RenderStats
from core.store.uploads import UploadRegistry
from core.store.webhook_outbox import WebhookOutbox
from core.store.workers import WorkerRegistry

BUILD_MARGIN_SECONDS = 120  # an examples build's state outlives the task's time limit by this much


@dataclass(frozen=True)
class Stores:
    jobs: JobStore
    catalog: CatalogStore
    workers: WorkerRegistry
    results: JobResults
    uploads: KeyedFiles
    upload_records: UploadRegistry
    webhooks: WebhookOutbox
    pending: PendingJobs  # queued jobs by batch key
    cache: PictureCache
    render_stats: RenderStats
    previews: JobPreviews  # the latest preview of each running job that asked for previews
    datasets: ImageSets  # image sets, beside the uploads
    example_indexes: ExampleIndexes  # dataset examples per (model, weights, layer, set), in the sets' folders

    @classmethod
    def from_settings(cls, settings: Settings) -> "Stores":
        redis = connect(redis_url(settings))
        results_objects, upload_objects, cache_objects = object_storages(settings)
        results = JobResults(results_objects, LastUse(redis, "pictures", results_objects.location))
        return cls(
            jobs=JobStore(redis, settings.retention_seconds),
            catalog=CatalogStore(redis),
            workers=WorkerRegistry(redis),
            results=results,
            uploads=KeyedFiles(upload_objects),
            upload_records=UploadRegistry(redis, settings.upload_retention_seconds),
            webhooks=WebhookOutbox(redis),
            pending=PendingJobs(redis),
            cache=PictureCache(
                KeyedFiles(cache_objects),
                results.pictures,
                LastUse(redis, "cache", cache_objects.location),
                settings.cache_max_bytes,
                max_idle_seconds=settings.retention_seconds,
                grace_seconds=settings.job_time_limit,
            ),
            render_stats=RenderStats(redis),
            previews=JobPreviews(redis, settings.retention_seconds),
            datasets=ImageSets(redis, upload_objects, settings.upload_retention_seconds),
            example_indexes=ExampleIndexes(redis, upload_objects, settings.job_time_limit + BUILD_MARGIN_SECONDS),
        )
