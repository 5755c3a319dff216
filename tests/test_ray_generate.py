"""Dataset generation on a real local Ray cluster: the same bytes as one machine, through the
library and the CLI, into a folder and a non-local fsspec filesystem, and after a worker is
killed mid-task. One cluster (2 CPUs) serves the whole module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from segan.data.generate import generate
from segan.data.presets import make_config
from segan.data.storage import FsspecStore
from tree_digest import tree_digest

# Ray binds its local cluster to loopback when it believes it cannot form a multi-node
# cluster (read once, at import): the tests' traffic stays on 127.0.0.1.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
if os.environ.get("CI"):
    import ray  # CI installs the extra (scripts/setup): there a missing ray fails, not skips
else:
    ray = pytest.importorskip("ray")

from segan.data.ray_executor import TASK_NAME  # noqa: E402

CFG = dict(views_per_scene=3, n_scenes=2)  # two train scenes; a Ray task per chunk of views


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance owned by this process (ray.shutdown stops exactly it)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), f"Ray is not on loopback: {address}"
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    """The single-machine run every Ray run must equal."""
    out = tmp_path_factory.mktemp("ref") / "data"
    generate(out, make_config("tiny", **CFG), progress=False)
    return tree_digest(out)


def test_ray_into_fsspec_filesystem_matches_one_machine(cluster, reference, tmp_path: Path):
    """Tasks in Ray worker processes write through fsspec (a DirFileSystem over a local
    folder: every worker reaches it) the same bytes as one process writing a folder."""
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    store = FsspecStore(DirFileSystem(path=str(tmp_path), fs=LocalFileSystem()), "")
    counts = generate(store, make_config("tiny", **CFG), chunk=1, progress=False,
                      ray_address="auto")
    assert counts == {"train_images": 6, "train_objects": counts["train_objects"]}
    assert tree_digest(tmp_path) == reference


def _our_ray_tasks() -> list[int]:
    """Pids of this test's Ray workers that are running a generation task now (Ray titles a
    busy worker 'ray::<task name>'); only descendants of this process are considered."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            if not cmd.startswith(f"ray::{TASK_NAME}".encode()):
                continue
            pid = int(entry)
            while pid > 1:  # walk up to this process
                stat = Path(f"/proc/{pid}/stat").read_text()
                pid = int(stat.rsplit(")", 1)[1].split()[1])
                if pid == me:
                    found.append(int(entry))
                    break
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def test_worker_killed_mid_task_is_retried_to_identical_output(cluster, reference,
                                                               tmp_path: Path):
    out = tmp_path / "data"
    killed: list[int] = []
    finished = threading.Event()

    def killer():
        # Once a view is written, SIGKILL a worker that is running a task (its chunk of 3
        # views is then part written).
        while not finished.is_set() and not killed:
            parts = list((out / "parts").rglob("*.json")) if (out / "parts").exists() else []
            if len(parts) >= 1:
                for pid in _our_ray_tasks():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        counts = generate(out, make_config("tiny", **CFG), chunk=3, progress=False,
                          ray_address="auto")
    finally:
        finished.set()
        thread.join()
    assert killed, "no generation task was found running to kill"
    assert counts["train_images"] == 6
    assert not list(out.rglob("*.tmp-*"))
    assert tree_digest(out) == reference


def test_cli_on_a_ray_cluster_address_and_file_url(cluster, reference, tmp_path: Path):
    """`segan generate file://... --ray HOST:PORT` from another process, as a user types it."""
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "segan.cli", "generate", f"file://{out}", "--preset", "tiny",
           "--views", "3", "--scenes", "2", "--chunk", "2", "--ray", cluster, "--quiet"]
    subprocess.run(cmd, check=True, timeout=300)
    assert tree_digest(out) == reference


def test_failing_task_names_scene_and_views(cluster, tmp_path: Path):
    cfg = replace(make_config("tiny", views_per_scene=2, n_scenes=1), renderer="nope")
    with pytest.raises(RuntimeError, match=r"scene s000_living_room views 0-1 failed.*"
                       r"unknown renderer 'nope'"):
        generate(tmp_path / "bad", cfg, chunk=2, progress=False, ray_address="auto")


def test_process_local_filesystem_is_refused(cluster):
    with pytest.raises(ValueError, match="lives inside one process"):
        generate("memory://segan-ray-test/x", make_config("tiny", **CFG), progress=False,
                 ray_address="auto")


def test_task_refuses_output_it_cannot_see(cluster, tmp_path: Path):
    """A node that does not share the driver's output folder stops the run, writing nothing
    (here: a folder without the generation.json a driver writes first)."""
    from segan.data.generate import Task
    from segan.data.ray_executor import run_on_ray
    from segan.data.storage import LocalStore

    cfg = make_config("tiny", views_per_scene=1, n_scenes=1)
    with pytest.raises(RuntimeError, match=r"OutputNotShared: .*generation.json is not "
                       r"visible on Ray node"):
        run_on_ray(cfg, LocalStore(tmp_path / "elsewhere"), [Task(0, (0,))], "auto")
    assert not (tmp_path / "elsewhere").exists()
