"""Everything a process keeps in Redis or on disk, opened once from Settings (API and workers alike)."""

from dataclasses import dataclass

from core.catalog import CatalogStore
from core.jobs import JobStore
from core.redis_client import connect, redis_url
from core.settings import Settings
from core.storage import LocalStorage, ResultStorage
from core.workers import WorkerRegistry


@dataclass(frozen=True)
class Stores:
    jobs: JobStore
    catalog: CatalogStore
    workers: WorkerRegistry
    results: ResultStorage
    uploads: ResultStorage

    @classmethod
    def from_settings(cls, settings: Settings) -> "Stores":
        redis = connect(redis_url(settings))
        return cls(
            jobs=JobStore(redis, settings.retention_seconds),
            catalog=CatalogStore(redis),
            workers=WorkerRegistry(redis),
            results=LocalStorage(settings.storage_dir),
            uploads=LocalStorage(settings.upload_dir),
        )
