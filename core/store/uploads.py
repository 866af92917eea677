"""Who uploaded which start image, and until when it is kept. Torch-free.

An image's record (a Redis set of the callers who uploaded it, '-' without API keys) expires
``upload_retention_seconds`` after its last upload or use; the cleanup deletes the files of images
whose record is gone, and the cached pictures made from them. The record is written before the
file, so a file without one is garbage.
"""

from typing import cast

from redis import Redis

_UPLOAD = "filterviz:upload:"  # + image id
_UPLOAD_SIZE = "filterviz:upload-size:"  # + image id: "WIDTHxHEIGHT", so a job can keep the photo's aspect


class UploadRegistry:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self._redis, self._retention = redis, retention_seconds

    def add(self, image_id: str, caller: str | None) -> None:
        pipe = self._redis.pipeline()
        pipe.sadd(_UPLOAD + image_id, caller or "-")
        pipe.expire(_UPLOAD + image_id, self._retention)
        pipe.execute()

    def record_size(self, image_id: str, width: int, height: int) -> None:
        self._redis.set(_UPLOAD_SIZE + image_id, f"{width}x{height}", ex=self._retention)

    def size(self, image_id: str) -> tuple[int, int] | None:
        """(width, height) of the uploaded image; None if unknown."""
        raw = cast(str | None, self._redis.get(_UPLOAD_SIZE + image_id))  # text: connect() decodes replies
        if raw is None:
            return None
        width, height = raw.split("x")
        return int(width), int(height)

    def owned_by(self, image_id: str, caller: str | None) -> bool:
        return bool(self._redis.sismember(_UPLOAD + image_id, caller or "-"))

    def keep(self, image_id: str) -> None:
        """A job will start from it: keep it another retention period."""
        pipe = self._redis.pipeline()
        pipe.expire(_UPLOAD + image_id, self._retention)
        pipe.expire(_UPLOAD_SIZE + image_id, self._retention)
        pipe.execute()

    def known(self, image_ids: list[str]) -> set[str]:
        """Those of ``image_ids`` whose record has not expired."""
        pipe = self._redis.pipeline(transaction=False)
        for image_id in image_ids:
            pipe.exists(_UPLOAD + image_id)
        return {image_id for image_id, exists in zip(image_ids, pipe.execute(), strict=True) if exists}
