"""Starting a local Ray runtime, or joining a cluster, with the settings that keep it reliable here.

Ray is optional (``pip install 'interp[ray]'``): `import_ray` turns its absence into one sentence.
A local runtime gets ``num_cpus = workers`` (one CPU per actor), no dashboard, no usage reporting, and
Ray's memory monitor switched off: on a small machine shared with other work, the monitor kills workers
that merely load a model when the whole box runs near its memory limit, which reads as a random fault.
Workers also keep the driver's priority: Ray starts them at nice 15, and on a loaded 2-core machine such
workers got 6 % of a core each next to 66 % for a serial run, so a sweep crawled.
Workers' logs stay out of the terminal (stderr is the progress bar's); a failed shard's exception still
comes back with its traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from interp.errors import InterpError, InvalidInputError

INSTALL_HINT = ("--workers and --ray-address need Ray, which is not installed; install it with: "
                "pip install 'interp[ray]'.")

# Set before a local runtime starts (the raylet and every worker inherit them); kept if already set.
LOCAL_ENV = {
    "RAY_memory_monitor_refresh_ms": "0",  # no OOM-killer: it kills model-loading workers on a loaded box
    "RAY_worker_niceness": "0",  # Ray starts workers at nice 15: on a busy machine they starve behind anything
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage reporting (no network)
    "RAY_DEDUP_LOGS": "0",
    "RAY_worker_register_timeout_seconds": "120",  # a slow start on a busy 2-core machine is not a failure
}
OBJECT_STORE_BYTES = 256 * 2**20  # shard inputs and outputs are small; the default takes 30% of RAM


def import_ray():
    """The ray module, or one sentence saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InterpError(INSTALL_HINT) from None
    return ray


@dataclass
class Runtime:
    """A Ray runtime this process joined (`started`: it started a local one and stops it at the end)."""

    ray: object
    workers: int
    started: bool
    address: str | None

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def start(workers: int | None = None, address: str | None = None) -> Runtime:
    """Join Ray: an already initialised runtime (tests start one per session), the cluster at `address`,
    or a new local runtime with `workers` CPUs. The number of actors: `workers`, else the cluster's CPUs."""
    if workers is not None and workers < 1:
        raise InvalidInputError(f"--workers must be at least 1, got {workers}.")
    ray = import_ray()
    if ray.is_initialized():
        return Runtime(ray, workers or _cluster_cpus(ray), False, address)
    if address:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except ConnectionError as exc:
            hint = ""
            if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":  # Ray only auto-enables it for local runtimes
                hint = (" (if the cluster uses token authentication, which `ray start` turns on by default since "
                        "Ray 2.59, set RAY_AUTH_MODE=token here too, with its token in RAY_AUTH_TOKEN or "
                        "~/.ray/auth_token)")
            first = str(exc).splitlines()[0]
            raise InterpError(f"Could not join the Ray cluster at {address}: {first}{hint}.") from None
        return Runtime(ray, workers or _cluster_cpus(ray), True, address)
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
             configure_logging=False, object_store_memory=OBJECT_STORE_BYTES)
    return Runtime(ray, workers or _cluster_cpus(ray), True, None)


def _cluster_cpus(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
