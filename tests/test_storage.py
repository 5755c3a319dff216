"""Output stores: a local folder and fsspec filesystems behave alike (atomic writes, listing,
temporaries, pickling), and a whole dataset written to ``memory://`` equals the folder one."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

from segan.data.atomic import TMP_MARK
from segan.data.generate import generate
from segan.data.presets import make_config
from segan.data.storage import FsspecStore, LocalStore, open_store


@pytest.fixture(params=["local", "file-url", "memory", "dirfs"])
def store(request, tmp_path: Path):
    if request.param == "local":
        return open_store(tmp_path / "out")
    if request.param == "file-url":
        return open_store(f"file://{tmp_path}/out")
    if request.param == "memory":
        return open_store(f"memory://segan-test-{tmp_path.name}/out")
    return FsspecStore(DirFileSystem(path=str(tmp_path), fs=LocalFileSystem()), "out")


def test_open_store_kinds(tmp_path: Path):
    assert isinstance(open_store(tmp_path), LocalStore)
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    local = open_store(f"file://{tmp_path}/x")
    assert isinstance(local, LocalStore) and local.root == tmp_path / "x"
    mem = open_store("memory://bucket/x")
    assert isinstance(mem, FsspecStore) and mem.atomic_put and mem.process_local
    with pytest.raises(ValueError, match="nosuchproto://x: cannot open this URL"):
        open_store("nosuchproto://x")


def test_write_read_list_pickle(store):
    store.prepare()
    store.write_bytes("parts/s0/00000.json", b"a")
    store.write_bytes("parts/s0/00001.json", b"bb")
    store.write_bytes("generation.json", b"{}")
    store.write_bytes("generation.json", b"{1}")  # replaced whole
    assert store.exists("generation.json") and not store.exists("nope.json")
    assert store.read_bytes("generation.json") == b"{1}"
    assert store.list_files("parts") == {"parts/s0/00000.json", "parts/s0/00001.json"}
    assert store.list_files("missing") == set()
    assert store.read_many(["parts/s0/00001.json", "generation.json"]) == {
        "parts/s0/00001.json": b"bb", "generation.json": b"{1}"}
    with pytest.raises(FileNotFoundError, match="nope.json"):
        store.read_many(["generation.json", "nope.json"])
    assert store.remove_stale_temporaries() == 0  # the writes left none
    again = pickle.loads(pickle.dumps(store))
    assert again.read_bytes("parts/s0/00000.json") == b"a"


def test_stale_temporaries_are_removed_and_never_listed(tmp_path: Path):
    """What a writer killed between its temporary and its rename leaves behind."""
    for store in (LocalStore(tmp_path / "a"),
                  FsspecStore(DirFileSystem(path=str(tmp_path), fs=LocalFileSystem()), "b")):
        store.write_bytes("parts/s0/00000.json", b"done")
        half = Path(tmp_path, "a" if isinstance(store, LocalStore) else "b", "parts", "s0",
                    f"00001.json{TMP_MARK}dead")
        half.write_bytes(b"half")
        assert store.list_files("parts") == {"parts/s0/00000.json"}
        assert store.remove_stale_temporaries() == 1
        assert not half.exists() and store.exists("parts/s0/00000.json")


def test_failed_move_leaves_no_temporary(tmp_path: Path, monkeypatch):
    fs = DirFileSystem(path=str(tmp_path), fs=LocalFileSystem())
    store = FsspecStore(fs, "")

    def broken_mv(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(fs, "mv", broken_mv)
    with pytest.raises(OSError, match="disk gone"):
        store.write_bytes("x/y.json", b"data")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_replace_where_rename_onto_a_file_is_refused(tmp_path: Path, monkeypatch):
    """SFTP v3 servers refuse to rename onto an existing file: the old one is replaced."""
    fs = DirFileSystem(path=str(tmp_path), fs=LocalFileSystem())
    store = FsspecStore(fs, "")
    store.write_bytes("a.json", b"old")
    real_mv = fs.mv

    def sftp_like_mv(src, dst, **kwargs):
        if fs.exists(dst):
            raise OSError("Failure")
        return real_mv(src, dst, **kwargs)

    monkeypatch.setattr(fs, "mv", sftp_like_mv)
    store.write_bytes("a.json", b"new")
    assert store.read_bytes("a.json") == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def _fs_digest(fs, root: str) -> dict[str, str]:
    return {p[len(root) + 1:]: hashlib.sha256(fs.cat_file(p)).hexdigest()
            for p in sorted(fs.find(root))}


def test_memory_url_dataset_equals_folder(tmp_path: Path):
    """The whole generator through fsspec: the same files and bytes as a local folder."""
    cfg = make_config("tiny", views_per_scene=2, n_scenes=1)
    generate(tmp_path / "local", cfg, progress=False)
    url = f"memory://segan-test-{tmp_path.name}/data"
    generate(url, cfg, progress=False)
    fs, root = fsspec.core.url_to_fs(url)
    local = {str(p.relative_to(tmp_path / "local")): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((tmp_path / "local").rglob("*")) if p.is_file()}
    assert _fs_digest(fs, root) == local
    assert generate(url, cfg, progress=False)["train_images"] == 2  # resumes: nothing to do
    with pytest.raises(ValueError, match="lives inside one process"):
        generate(url, cfg, workers=2, progress=False)
    fs.rm(root, recursive=True)
