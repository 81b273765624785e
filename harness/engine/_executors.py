"""`--executor`: where a run's requests are computed. `local` (the default) is this process; `ray`
spreads the grid over a Ray cluster (harness.engine._ray_executor, imported only then: Ray is optional)."""

from __future__ import annotations

from harness._util.registry import did_you_mean
from harness.engine._grid import Executor
from harness.errors import HarnessError
from harness.spec._options import DEFAULT_SHARD_SIZE
from harness.spec._spec import _positive_int

EXECUTORS = ["local", "ray"]


def build_executor(name: str, address: str | None, max_models_per_worker: str | None, shard_size: str | None) -> Executor | None:
    """The executor the flags ask for (None: local), checked before anything loads."""
    if name not in EXECUTORS:
        raise HarnessError(f"unknown executor {name!r}{did_you_mean(name, EXECUTORS)}; choose {' or '.join(EXECUTORS)}")
    if name == "local":
        for flag, value in (("--address", address), ("--max-models-per-worker", max_models_per_worker), ("--shard-size", shard_size)):
            if value is not None:
                raise HarnessError(f"{flag} applies to --executor ray only")
        return None
    try:
        from harness.engine._ray_executor import RayExecutor, RayOptions
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise HarnessError("--executor ray needs Ray: pip install 'harness[ray]'") from None
    if address is not None and not address.strip():
        raise HarnessError("--address is empty: give a cluster address (host:port, ray://host:port or auto)")
    return RayExecutor(
        RayOptions(
            address=address,
            max_models_per_worker=_positive_int("max_models_per_worker", max_models_per_worker, 1)
            if max_models_per_worker is not None
            else None,
            shard_size=_positive_int("shard_size", shard_size, 1) if shard_size is not None else DEFAULT_SHARD_SIZE,
        )
    )
