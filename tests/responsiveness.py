"""Is the API still answering while an attack runs? A prober that times ``GET /healthz`` meanwhile.

    with HealthProbe(api_url) as probe:
        run_the_attack()
    probe.assert_responsive()      # every probe answered 200 within HEALTHZ_BOUND_SECONDS

The prober is a process of its own (this file, run as a script), one request at a time, every
PROBE_INTERVAL_SECONDS, on a fresh connection each time (a stalled event loop shows as a slow accept or a
slow answer). Not a thread of the test process: there it shared the GIL with the attack's own client
threads and waited out the test process's garbage collections (0.25 s for a full one here: tests/timing.py),
timing them as well as the API (CI saw one probe of 199 take 528 ms while the rest took 5-10 ms, and once
323 ms of 81).
"""

import json
import subprocess
import sys
import threading
import time

import httpx

# Loose on purpose: the attacks it guards against held /healthz for 0.6-12.6 s; a busy 2-core CI machine
# measured up to 136 ms with the fixes in place.
HEALTHZ_BOUND_SECONDS = 0.5
PROBE_INTERVAL_SECONDS = 0.02
PROBE_TIMEOUT_SECONDS = 30.0
READY = "ready"


class HealthProbe:
    def __init__(self, api_url: str, bound_seconds: float = HEALTHZ_BOUND_SECONDS) -> None:
        self._url = f"{api_url}/healthz"
        self.bound_seconds = bound_seconds
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._prober: subprocess.Popen[str] | None = None

    def __enter__(self) -> "HealthProbe":
        self._prober = subprocess.Popen(
            [sys.executable, __file__, self._url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._prober.stdout is not None
        # The attack starts once the prober is probing, not while it is still importing httpx.
        first = self._prober.stdout.readline().strip()
        assert first == READY, f"the /healthz prober did not start: {first!r}"
        return self

    def __exit__(self, *_exc_info: object) -> None:
        assert self._prober is not None
        # Closing its stdin stops it; it then prints one JSON line per probe.
        out, _ = self._prober.communicate(timeout=PROBE_TIMEOUT_SECONDS + 10)
        for line in filter(None, out.splitlines()):
            record = json.loads(line)
            if "failure" in record:
                self.failures.append(record["failure"])
            else:
                self.latencies.append(record["seconds"])
                if record["status"] != 200:
                    self.failures.append(f"status {record['status']}")

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))

    def assert_responsive(self) -> None:
        assert not self.failures, f"/healthz failed during the attack: {self.failures[:3]}"
        assert len(self.latencies) >= 3, f"only {len(self.latencies)} probes ran: the attack was too short to judge"
        assert self.worst < self.bound_seconds, (
            f"/healthz took up to {self.worst * 1000:.0f} ms during the attack "
            f"(bound {self.bound_seconds * 1000:.0f} ms; {len(self.latencies)} probes)"
        )


def _probe_until_stdin_closes(url: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    records: list[dict] = []
    # One client (building one costs ~40 ms of SSL set-up), no kept-alive connections.
    with httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        print(READY, flush=True)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = client.get(url).status_code
            except httpx.HTTPError as exc:
                records.append({"failure": f"{type(exc).__name__}: {exc}"})
            else:
                records.append({"seconds": time.perf_counter() - started, "status": status})
            stop.wait(PROBE_INTERVAL_SECONDS)
    print("\n".join(json.dumps(record) for record in records), flush=True)


if __name__ == "__main__":
    _probe_until_stdin_closes(sys.argv[1])
