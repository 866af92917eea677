"""Who uploaded which start image, and until when it is kept. Torch-free.

An image's record (a Redis set of the callers who uploaded it, '-' without API keys) expires
``upload_retention_seconds`` after its last upload or use; the cleanup deletes the files of images
whose record is gone. The record is written before the file, so a file without one is garbage.
"""

from redis import Redis

_UPLOAD = "filterviz:upload:"  # + image id


class UploadRegistry:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self._redis, self._retention = redis, retention_seconds

    def add(self, image_id: str, caller: str | None) -> None:
        pipe = self._redis.pipeline()
        pipe.sadd(_UPLOAD + image_id, caller or "-")
        pipe.expire(_UPLOAD + image_id, self._retention)
        pipe.execute()

    def owned_by(self, image_id: str, caller: str | None) -> bool:
        return bool(self._redis.sismember(_UPLOAD + image_id, caller or "-"))

    def keep(self, image_id: str) -> None:
        """A job will start from it: keep it another retention period."""
        self._redis.expire(_UPLOAD + image_id, self._retention)

    def known(self, image_ids: list[str]) -> set[str]:
        """Those of ``image_ids`` whose record has not expired."""
        pipe = self._redis.pipeline(transaction=False)
        for image_id in image_ids:
            pipe.exists(_UPLOAD + image_id)
        return {image_id for image_id, exists in zip(image_ids, pipe.execute(), strict=True) if exists}
