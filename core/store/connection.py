"""The one way every process connects to Redis (string replies, so records decode as text)."""

from redis import Redis

from core.settings import Settings


def redis_url(settings: Settings) -> str:
    if settings.redis_url is None:
        raise ValueError("FILTERVIZ_REDIS_URL is not set: point it at the Redis that holds the jobs")
    return settings.redis_url


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)
