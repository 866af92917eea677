"""The model and layer catalog (core.catalog) in Redis, where workers publish it and the API reads it.

Each worker, at start, publishes one :class:`ModelEntry` per model it serves (layers at the
model's default size). Layers at other sizes are computed on request by a worker
(``filterviz.describe_layers``) and cached here.
"""

import asyncio
import weakref
from typing import cast

from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis

from core.catalog import LayerAnswer, ModelEntry, size_key

_MODELS = "filterviz:catalog:models"  # hash: model name -> ModelEntry json
_SIZES = "filterviz:catalog:layers:"  # hash per model: "HxW" -> LayerAnswer json
_SIZE_CACHE_SECONDS = 24 * 3600
_ASYNC_CONNECTIONS = 8  # per API process and event loop


class CatalogStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def publish(self, entry: ModelEntry) -> None:
        """Store a model's entry; layers cached at other sizes may be stale now, so drop them."""
        pipe = self._redis.pipeline()
        pipe.hset(_MODELS, entry.name, entry.model_dump_json())
        pipe.delete(_SIZES + entry.name)
        pipe.execute()

    def models(self) -> dict[str, ModelEntry]:
        entries = cast(dict[str, str], self._redis.hgetall(_MODELS))  # text: connect() decodes replies
        return {name: ModelEntry.model_validate_json(raw) for name, raw in entries.items()}

    def published_names(self) -> set[str]:
        """The models published so far (cheap: no entry is read)."""
        return set(cast(list[str], self._redis.hkeys(_MODELS)))

    def store_layers(self, model: str, size: tuple[int, int], answer: LayerAnswer) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(_SIZES + model, size_key(size), answer.model_dump_json())
        pipe.expire(_SIZES + model, _SIZE_CACHE_SECONDS)
        pipe.execute()

    def layers(self, model: str, size: tuple[int, int]) -> LayerAnswer | None:
        raw = self._redis.hget(_SIZES + model, size_key(size))
        return None if raw is None else LayerAnswer.model_validate_json(raw)


class AsyncCatalogReader:
    """The reads the API makes from coroutines, so that neither a read nor a wait holds a thread.

    redis.asyncio connections belong to the event loop that opened them: one client per loop.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedis] = weakref.WeakKeyDictionary()

    async def model(self, name: str) -> ModelEntry | None:
        """One model's entry (reading only that one)."""
        raw = await self._client().hget(_MODELS, name)
        return None if raw is None else ModelEntry.model_validate_json(raw)

    async def layers(self, model: str, size: tuple[int, int]) -> LayerAnswer | None:
        raw = await self._client().hget(_SIZES + model, size_key(size))
        return None if raw is None else LayerAnswer.model_validate_json(raw)

    def _client(self) -> AsyncRedis:
        """A few connections, shared: each read is brief, and a burst of requests must not open one apiece."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = BlockingConnectionPool.from_url(self._url, max_connections=_ASYNC_CONNECTIONS, decode_responses=True)
            client = self._clients[loop] = AsyncRedis(connection_pool=pool)
        return client
