"""The worker's liveness probe: exit 0 while this worker's janitor keeps stamping it alive, else 1.

Kubernetes runs it in the worker's container (``python -m worker.liveness``, deploy/k8s/worker.yaml).
The stamp is what the API's /readyz and the other workers' janitors trust too, so a worker this
probe calls dead is one the others already treat as dead: a wedged parent process, a janitor
thread that stopped, a Redis the worker cannot reach. Cheap on purpose: no Celery app, no torch.
"""

import argparse
import sys

from celery.utils.nodenames import default_nodename, host_format
from redis import RedisError

from core.settings import Settings
from core.store.connection import connect
from core.store.workers import WorkerRegistry


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m worker.liveness", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--name",
        help="the worker's name as given to `filterviz worker --name` (default: Celery's, celery@HOSTNAME)",
    )
    parser.add_argument(
        "--within",
        type=float,
        default=settings.stale_after_seconds,
        help="seconds a stamp stays fresh (default: FILTERVIZ_STALE_AFTER_SECONDS, as the janitors judge jobs)",
    )
    return parser


def worker_name(name: str | None) -> str:
    """The name the worker registers under, expanded as Celery expands ``--hostname`` (%h; no name: celery@host)."""
    return host_format(default_nodename(name))


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    name = worker_name(args.name)
    if settings.redis_url is None:
        print("not live: FILTERVIZ_REDIS_URL is not set", file=sys.stderr)
        return 1
    try:
        alive = name in WorkerRegistry(connect(settings.redis_url)).alive(args.within)
    except RedisError as exc:
        print(f"not live: Redis does not answer: {exc}", file=sys.stderr)
        return 1
    if not alive:
        print(f"not live: {name} has not stamped itself alive in the last {args.within:g} s", file=sys.stderr)
        return 1
    print(f"live: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
