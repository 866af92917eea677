"""``filterviz serve``, ``filterviz api`` and ``filterviz worker``: run the service."""

import argparse
import os
import signal
import subprocess
import sys
import threading
from contextlib import ExitStack

from core.processes import die_with_parent
from core.queues import META_QUEUE, RENDER_QUEUE
from core.settings import Settings
from filterviz.redis_server import embedded_redis

STOP_TIMEOUT_SECONDS = 10.0
EXAMPLE_JOB = '{"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 10, "size": 64}'


def add_service_commands(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="start Redis (embedded unless FILTERVIZ_REDIS_URL is set), the API and a worker"
    )
    _add_bind_options(serve)
    serve.add_argument("--workers", type=int, default=1, help="render processes of the worker (1)")
    serve.set_defaults(func=run_serve)

    api = subparsers.add_parser("api", help="run only the HTTP API (needs FILTERVIZ_REDIS_URL)")
    _add_bind_options(api)
    api.set_defaults(func=run_api)

    worker = subparsers.add_parser("worker", help="run only a Celery worker (needs FILTERVIZ_REDIS_URL)")
    worker.add_argument("--concurrency", type=int, default=1, help="render processes (1; one per GPU)")
    worker.add_argument(
        "--queues", default=f"{RENDER_QUEUE},{META_QUEUE}", help=f"queues to consume ({RENDER_QUEUE},{META_QUEUE})"
    )
    worker.add_argument("--name", help="worker name, unique per host (celery@HOSTNAME)")
    worker.set_defaults(func=run_worker)


def api_command(host: str, port: int) -> list[str]:
    uvicorn = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    return [*uvicorn, "--host", host, "--port", str(port), "--http", "api.slow_clients:HeaderTimeoutProtocol"]


def worker_command(
    concurrency: int, queues: str = f"{RENDER_QUEUE},{META_QUEUE}", name: str | None = None
) -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "worker.entrypoint", "worker", "--loglevel", "INFO"]
    command += ["--concurrency", str(concurrency), "--queues", queues, "--without-mingle", "--without-gossip"]
    return command + (["--hostname", name] if name else [])


def run_api(args: argparse.Namespace) -> int:
    return _exec_with_redis(api_command(args.host, args.port))


def run_worker(args: argparse.Namespace) -> int:
    return _exec_with_redis(worker_command(args.concurrency, args.queues, args.name))


def run_serve(args: argparse.Namespace) -> int:
    """Redis, the API and a worker as child processes, until Ctrl-C / SIGTERM or a child dies."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: its terminal closed
        signal.signal(signum, lambda *_: stop.set())
    with ExitStack() as stack:
        url = Settings().redis_url
        if url is None:
            url = stack.enter_context(embedded_redis())
            print(f"Redis: embedded redis-server at {url} (its data goes when serve stops)", flush=True)
        env = {**os.environ, "FILTERVIZ_REDIS_URL": url}
        children = {
            "worker": _start(worker_command(args.workers), env),
            "api": _start(api_command(args.host, args.port), env),
        }
        stack.callback(_stop_all, list(children.values()))
        _print_welcome(f"http://{args.host}:{args.port}")
        while not stop.wait(0.5):
            exited = {name: child.returncode for name, child in children.items() if child.poll() is not None}
            if exited:
                print(f"filterviz: {', '.join(exited)} exited ({exited}); stopping", file=sys.stderr)
                return 1
    return 0


def _add_bind_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")


def _exec_with_redis(command: list[str]) -> int:
    if Settings().redis_url is None:
        print("filterviz: error: FILTERVIZ_REDIS_URL is not set (or use `filterviz serve`)", file=sys.stderr)
        return 2
    os.execv(command[0], command)


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Own session: a Ctrl-C in the terminal reaches serve only, which stops the children in order.

    Should serve die without stopping them (SIGKILL), the kernel kills them (a worker's pool
    processes die with their parent in turn: Celery asks the kernel the same).
    """
    return subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=die_with_parent())


def _stop_all(children: list[subprocess.Popen]) -> None:
    """SIGTERM each, then SIGKILL what is left of its process group after STOP_TIMEOUT_SECONDS.

    A job cut short this way is taken up again by a janitor once a worker runs (its heartbeat is stale).
    """
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
    for child in reversed(children):
        try:
            child.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _print_welcome(base_url: str) -> None:
    print(
        f"API: {base_url} (OpenAPI docs at {base_url}/docs); Ctrl-C stops everything.\n"
        f"Try:\n  curl -si -X POST {base_url}/v1/jobs -H 'content-type: application/json' -d '{EXAMPLE_JOB}'\n"
        f"  curl -s {base_url}/v1/jobs/JOB_ID        # until status is succeeded, then open grid_url",
        flush=True,
    )
