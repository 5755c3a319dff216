"""Dataset generation on a Ray cluster: ``generate``'s tasks (one scene, a chunk of its views)
run as Ray tasks instead of in local processes. Ray is an optional extra (``segan[ray]``).

The same ``run_task`` writes the same bytes into the same store, so the output equals a
single-machine run byte for byte. Failures are handled by what the generator already is:
- every file is written atomically and a view's ``parts/`` record last, and ``run_task``
  skips views that have a record, so a task that Ray retries after its worker died (or that
  ran twice) finishes the chunk without duplicating or mixing anything;
- a worker killed mid-write leaves at most a temporary, which ``generate`` removes once no
  task runs;
- Ray retries a task whose worker process or node died (``max_retries``) and one that raised
  an ``OSError`` (a flaky network filesystem); any other exception is a bug or bad input and
  fails the run at once, naming the scene and views (the output stays resumable).

Every node must see the output: a folder on a file system mounted at the same path on every
node (NFS, a single machine) or an fsspec URL every node can reach (``s3://...``). A task
that cannot see the run's ``generation.json`` refuses to start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from segan.data.generate import CONFIG_FILE, Task, _init_worker, run_task
from segan.data.presets import GenerateConfig
from segan.data.storage import Store

TASK_NAME = "segan_generate_views"  # Ray shows it in process titles and its dashboard


class OutputNotShared(RuntimeError):
    """A Ray worker does not see the output the driver created (not retried)."""


def generate_views(cfg: GenerateConfig, store: Store, task: Task) -> int:
    """Body of one Ray task: ``run_task`` with the renderer's threads set to the task's CPUs."""
    import ray

    if not store.exists(CONFIG_FILE):
        node = ray.get_runtime_context().get_node_id()
        raise OutputNotShared(
            f"{store.describe(CONFIG_FILE)} is not visible on Ray node {node}: the output "
            "must be on a file system every node mounts at the same path, or an fsspec URL "
            "every node can reach (s3://...)"
        )
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    _init_worker(max(1, int(cpus)))
    return run_task(cfg, store, task)


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "generating on Ray needs the `ray` package: pip install 'segan[ray]'"
        ) from e
    return ray


def connect(address: str, num_cpus: int | None = None) -> None:
    """ray.init for ``address``: ``auto`` (the cluster RAY_ADDRESS names, else the one
    ``ray start`` made on this machine; an error if there is none), ``local`` (a new Ray
    instance on this machine, ``num_cpus`` CPUs), ``HOST:PORT`` or ``ray://HOST:PORT``."""
    ray = _import_ray()
    kwargs: dict = {"logging_level": logging.WARNING}
    if address == "local":
        kwargs.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as e:
        raise ConnectionError(
            f"no Ray cluster found at {address!r} ({e}); start one with `ray start --head` "
            "(then --ray auto) or use --ray local for a Ray instance on this machine only"
        ) from e


def run_on_ray(
    cfg: GenerateConfig,
    store: Store,
    tasks: Sequence[Task],
    address: str,
    *,
    max_in_flight: int | None = None,
    on_done: Callable[[Task], None] | None = None,
    max_retries: int = 3,
) -> None:
    """Run ``tasks`` on the Ray cluster at ``address``, at most ``max_in_flight`` at a time
    (None: the cluster's CPUs); ``on_done`` is called as each task finishes. A process that
    is already connected to Ray (``ray.init`` called) uses that connection."""
    ray = _import_ray()
    connected_here = not ray.is_initialized()
    if connected_here:
        connect(address, num_cpus=max_in_flight)
    try:
        if max_in_flight is None:
            max_in_flight = max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(generate_views).options(
            name=TASK_NAME, num_cpus=1, max_retries=max_retries, retry_exceptions=[OSError]
        )
        cfg_ref, store_ref = ray.put(cfg), ray.put(store)
        queue = list(tasks)
        queue.reverse()  # pop() from the end keeps scene order: a worker reuses its scene
        pending: dict = {}
        while queue or pending:
            while queue and len(pending) < max_in_flight:
                task = queue.pop()
                pending[remote.remote(cfg_ref, store_ref, task)] = task
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as e:
                    for other in pending:
                        ray.cancel(other)
                    # A task's own exception comes wrapped with its remote traceback (kept
                    # in the chain); the message names only the cause.
                    cause = getattr(e, "cause", None) or e
                    views = f"{task.views[0]}-{task.views[-1]}"
                    raise RuntimeError(
                        f"Ray task for scene {cfg.scene_id(task.scene_index)} views {views} "
                        f"failed: {type(cause).__name__}: {cause} (a task is retried up to "
                        f"{max_retries} times when its worker dies or it raises OSError); "
                        f"finished views are kept in {store.describe()}: run again to resume"
                    ) from e
                if on_done is not None:
                    on_done(task)
    finally:
        if connected_here:
            ray.shutdown()
