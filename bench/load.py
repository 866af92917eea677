"""Load: many clients submitting and polling jobs at once, from a process of their own.

    python -m bench.load [--clients 50] [--seconds 60] [--url http://127.0.0.1:8000]

Without --url it starts a private service first (redis-server, one worker, the API), as the tests
do, and runs testkit.load against it. Prints p50/p95/p99 latency of both routes, the statuses
seen, and the jobs accepted, finished and lost (accepted, then not found or never finished).
"""

import argparse
import asyncio
import tempfile
from pathlib import Path

from testkit.load import LoadReport, run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between polls of one job")
    parser.add_argument("--url", help="an API already running (default: start a private service)")
    args = parser.parse_args()

    if args.url:
        report = asyncio.run(run_load(args.url, args.clients, args.seconds, poll_seconds=args.poll))
    else:
        report = _against_private_service(args.clients, args.seconds, args.poll)
    print(report.summary())


def _against_private_service(clients: int, seconds: float, poll_seconds: float) -> LoadReport:
    """A private redis-server, worker and API (imported here: against --url, httpx is all it needs)."""
    from core.store import Stores
    from filterviz.redis_server import embedded_redis
    from testkit.services import service_settings_for, settings_env, start_api, start_worker, wait_until

    with embedded_redis() as redis_url, tempfile.TemporaryDirectory(prefix="filterviz-load-") as workdir:
        root = Path(workdir)
        settings = service_settings_for(redis_url, root)
        env = settings_env(settings, root / "torch")
        worker = start_worker(settings, env, "load@bench", root)
        try:
            wait_until(Stores.from_settings(settings).catalog.models, 90, "the worker to publish its catalog")
            api, url = start_api(env, root / "api.log")
            try:
                print(f"service up at {url}; {clients} clients for {seconds:g} s", flush=True)
                return asyncio.run(run_load(url, clients, seconds, poll_seconds=poll_seconds))
            finally:
                api.stop()
        finally:
            worker.stop()


if __name__ == "__main__":
    main()
