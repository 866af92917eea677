"""`filterviz serve`: an embedded Redis, the API and a worker from one command, stopped by Ctrl-C;
killed outright, it leaves no process and no directory behind."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from filterviz.redis_server import free_port
from testkit.services import wait_until


def _start_serve(tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    """`filterviz serve` with an embedded Redis on a free port; returns it, the API's URL and its log."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("FILTERVIZ_REDIS_URL", "REDIS_URL")}
    env["FILTERVIZ_MODELS"] = '["efficientnet_lite0"]'
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "filterviz", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return serve, f"http://127.0.0.1:{port}", log_path


def test_serve_starts_everything_and_stops_it_all_on_ctrl_c(tmp_path: Path) -> None:
    serve, api, log_path = _start_serve(tmp_path)
    try:
        wait_until(lambda: _status(f"{api}/readyz") == 200, 90, "serve to be ready")
        output = log_path.read_text()
        redis_url = re.search(r"embedded redis-server at (redis://\S+)", output).group(1)
        assert f"curl -si -X POST {api}/v1/jobs" in output
        assert httpx.get(f"{api}/v1/models").json()[0]["name"] == "efficientnet_lite0"
    finally:
        serve.send_signal(signal.SIGINT)  # also when an assertion failed: serve stops its children
        returncode = serve.wait(30)

    assert returncode == 0, log_path.read_text()

    assert _status(f"{api}/healthz") is None
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: _redis_down(client), 5, "the embedded Redis to stop")
    assert "Warm shutdown" in log_path.read_text()


def test_a_killed_serve_leaves_no_process_and_no_directory_behind(tmp_path: Path) -> None:
    serve, api, log_path = _start_serve(tmp_path)
    tree: list[int] = []
    workdir: Path | None = None
    try:
        wait_until(lambda: _status(f"{api}/readyz") == 200, 90, "serve to be ready")
        tree = _descendants(serve.pid)
        commands = {pid: _command(pid) for pid in tree}
        workdir = _redis_dir(commands)
        programs = [_program(command) for command in commands.values()]
        assert {"redis-server", "uvicorn"} <= set(programs) and programs.count("celery") >= 2  # + its pool
        assert workdir.is_dir()

        serve.kill()  # SIGKILL: an OOM kill, a CI timeout, `kill -9`
        serve.wait()
        deadline = time.monotonic() + 10
        while _left_behind(commands, workdir) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _left_behind(commands, workdir)
        assert left == [], "left behind:\n" + "\n".join(left)
    finally:
        _kill_all(serve, tree, workdir)


def _descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _command(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def _program(command: list[str]) -> str:
    """redis-server, celery, uvicorn, python (a `python -m filterviz...` helper), ..."""
    if command and "redis-server" in command[0]:
        return "redis-server"
    return command[2] if command[1:2] == ["-m"] else Path(command[0]).name if command else ""


def _redis_dir(commands: dict[int, list[str]]) -> Path:
    """The embedded Redis's working directory (redis-server rewrites its command line, but chdirs to --dir)."""
    pid = next(pid for pid, command in commands.items() if command and "redis-server" in command[0])
    return Path(os.readlink(f"/proc/{pid}/cwd"))


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited process nobody reaped yet is gone for this purpose)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _left_behind(commands: dict[int, list[str]], workdir: Path) -> list[str]:
    left = [f"{pid}: {' '.join(command).strip()}" for pid, command in commands.items() if _running(pid)]
    return left + ([f"directory {workdir}"] if workdir.exists() else [])


def _kill_all(serve: subprocess.Popen, tree: list[int], workdir: Path | None) -> None:
    """What this test started, in case serve did not take it down."""
    if serve.poll() is None:
        serve.kill()
        serve.wait()
    for pid in tree:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url).status_code
    except httpx.TransportError:
        return None


def _redis_down(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.ConnectionError:
        return True
    return False


def test_api_and_worker_commands_need_a_redis_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FILTERVIZ_REDIS_URL", "REDIS_URL")}
    for command in ("api", "worker"):
        result = subprocess.run(
            [sys.executable, "-m", "filterviz", command], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 2
        assert result.stderr == "filterviz: error: FILTERVIZ_REDIS_URL is not set (or use `filterviz serve`)\n"
