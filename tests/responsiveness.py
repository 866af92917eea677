"""Is the API still answering while an attack runs? A prober that times ``GET /healthz`` meanwhile.

    with HealthProbe(api_url) as probe:
        run_the_attack()
    probe.assert_responsive()      # every probe answered 200 within HEALTHZ_BOUND_SECONDS

The probe runs in a thread of the test process, one request at a time, every PROBE_INTERVAL_SECONDS,
on a fresh connection each time (a stalled event loop shows as a slow accept or a slow answer).
"""

import threading
import time

import httpx

# Loose on purpose: the attacks it guards against held /healthz for 0.6-12.6 s; a busy 2-core CI machine
# measured up to 136 ms with the fixes in place, and once 323 ms (one probe of 81, the probe sharing the test
# process with the attack's upload threads; 27-45 ms when the machine is otherwise idle).
HEALTHZ_BOUND_SECONDS = 0.5
PROBE_INTERVAL_SECONDS = 0.02
PROBE_TIMEOUT_SECONDS = 30.0


class HealthProbe:
    def __init__(self, api_url: str, bound_seconds: float = HEALTHZ_BOUND_SECONDS) -> None:
        self._url = f"{api_url}/healthz"
        self.bound_seconds = bound_seconds
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe_until_stopped, name="healthz-probe", daemon=True)

    def __enter__(self) -> "HealthProbe":
        self._thread.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT_SECONDS + 1)

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

    def _probe_until_stopped(self) -> None:
        # One client (building one costs ~40 ms of SSL set-up), no kept-alive connections.
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, limits=fresh) as client:
            while not self._stop.is_set():
                self._probe_once(client)
                self._stop.wait(PROBE_INTERVAL_SECONDS)

    def _probe_once(self, client: httpx.Client) -> None:
        started = time.perf_counter()
        try:
            status = client.get(self._url).status_code
        except httpx.HTTPError as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
        else:
            self.latencies.append(time.perf_counter() - started)
            if status != 200:
                self.failures.append(f"status {status}")
