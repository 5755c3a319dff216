"""Where a generation run writes: a local folder or any fsspec filesystem, behind one small API.

Every write is atomic, so a reader (or a resumed run) sees each file whole or not at all:
- a local folder (a path or a ``file://`` URL) writes a temporary sibling and renames it
  (``segan.data.atomic``);
- an object store (``s3://``, ``gs://``, ``az://``, ...) and ``memory://`` store an object in
  one put, which is atomic by itself, so nothing temporary is ever written;
- any other fsspec filesystem (``sftp://``, ``ftp://``, a ``DirFileSystem``, ...) writes
  ``<name>.tmp-<random>`` and moves it onto the final name.

Paths inside a store are relative and use ``/``. A store pickles to its URL (or its
filesystem's own pickled form), so it can be handed to worker processes and Ray tasks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segan.data.atomic import TMP_MARK, remove_stale_temporaries, write_bytes_atomic

# fsspec protocols whose single put never exposes a partial object under its final name.
ATOMIC_PUT_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "memory"}
)
# Filesystems that live inside one process: other processes (spawn workers, Ray tasks) would
# write into their own empty copy.
PROCESS_LOCAL_PROTOCOLS = frozenset({"memory"})


def is_url(out: str | os.PathLike) -> bool:
    return isinstance(out, str) and ("://" in out or "::" in out)


class LocalStore:
    """A folder on this machine (or on a file system every worker mounts at the same path)."""

    process_local = False

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def describe(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def read_many(self, rels: Iterable[str]) -> dict[str, bytes]:
        """Contents by path; a missing file raises FileNotFoundError naming it."""
        return {rel: (self.root / rel).read_bytes() for rel in rels}

    def write_bytes(self, rel: str, data: bytes) -> None:
        write_bytes_atomic(self.root / rel, data)

    def list_files(self, folder: str) -> set[str]:
        """Every file under ``folder``, as store paths (``folder/.../name``); temporaries
        are left out."""
        base = self.root / folder
        found = set()
        for dirpath, _dirs, files in os.walk(base):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            found.update(f"{rel_dir}/{name}" for name in files if TMP_MARK not in name)
        return found

    def remove_stale_temporaries(self) -> int:
        return remove_stale_temporaries(self.root) if self.root.exists() else 0


class FsspecStore:
    """A folder ``root`` of an fsspec filesystem ``fs``."""

    def __init__(self, fs: Any, root: str, url: str | None = None):
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url  # how the user named it, for messages and pickling
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        self.protocols = frozenset(protocols)
        self.atomic_put = bool(self.protocols & ATOMIC_PUT_PROTOCOLS)
        self.process_local = bool(self.protocols & PROCESS_LOCAL_PROTOCOLS)

    @classmethod
    def from_url(cls, url: str, **storage_options: Any) -> FsspecStore:
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(url, **storage_options)
        return cls(fs, root, url)

    def __repr__(self) -> str:
        return f"FsspecStore({self.describe()!r})"

    def __reduce__(self):
        # Re-open from the URL in the receiving process (credentials come from its own
        # environment); a store built from a filesystem object pickles that object.
        if self.url is not None:
            return (FsspecStore.from_url, (self.url,))
        return (FsspecStore, (self.fs, self.root))

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def describe(self, rel: str = "") -> str:
        base = self.url.rstrip("/") if self.url else f"{type(self.fs).__name__}:{self.root}"
        return f"{base}/{rel}" if rel else base

    def prepare(self) -> None:
        if self.root:
            self.fs.makedirs(self.root, exist_ok=True)

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(rel))
        except FileNotFoundError:
            raise FileNotFoundError(self.describe(rel)) from None

    def read_many(self, rels: Iterable[str]) -> dict[str, bytes]:
        rels = list(rels)
        paths = [self._path(r) for r in rels]
        # One batched call: async filesystems (s3fs, gcsfs) fetch these concurrently.
        got = self.fs.cat(paths, on_error="return") if paths else {}
        out = {}
        for rel, path in zip(rels, paths, strict=True):
            data = got.get(path, got.get(self.fs._strip_protocol(path)))
            if data is None or isinstance(data, BaseException):
                raise FileNotFoundError(self.describe(rel))
            out[rel] = data
        return out

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self._path(rel)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent and not self.atomic_put:
            self.fs.makedirs(parent, exist_ok=True)
        if self.atomic_put:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{path}{TMP_MARK}{uuid.uuid4().hex}"
        self.fs.pipe_file(tmp, data)
        try:
            try:
                self.fs.mv(tmp, path)
            except OSError:
                if not self.fs.exists(path):
                    raise
                # Some servers (SFTP v3) refuse to rename onto an existing file. Replacing
                # one is not atomic then; only files whose completeness another file marks
                # (a view's images before its record, annotations rebuilt on each run) are
                # ever replaced, so a crash in between is repaired by running again.
                self.fs.rm_file(path)
                self.fs.mv(tmp, path)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)
            raise

    def _relative(self, path: str) -> str:
        """Store path of a path that ``fs.find`` returned."""
        path = self.fs._strip_protocol(path)
        root = self.fs._strip_protocol(self.root).rstrip("/") if self.root else ""
        if root and path.startswith(root + "/"):
            path = path[len(root) + 1 :]
        return path.lstrip("/")

    def list_files(self, folder: str) -> set[str]:
        base = self._path(folder)
        if not self.fs.exists(base):
            return set()
        rels = (self._relative(p) for p in self.fs.find(base))
        return {r for r in rels if TMP_MARK not in r.rsplit("/", 1)[-1]}

    def remove_stale_temporaries(self) -> int:
        if self.atomic_put or not self.fs.exists(self._path("")):
            return 0  # one-put stores never hold temporaries
        stale = [p for p in self.fs.find(self._path("")) if TMP_MARK in p.rsplit("/", 1)[-1]]
        for p in stale:
            self.fs.rm_file(p)
        return len(stale)


Store = LocalStore | FsspecStore


def open_store(out: str | os.PathLike | Store) -> Store:
    """A store for ``out``: a store as is, a path or ``file://`` URL as a LocalStore (atomic
    renames, fsync), any other fsspec URL (``s3://bucket/prefix``, ``memory://x``,
    ``sftp://host/path``, chained ``simplecache::...``) as an FsspecStore."""
    if isinstance(out, LocalStore | FsspecStore):
        return out
    if not is_url(out):
        return LocalStore(out)
    try:
        store = FsspecStore.from_url(str(out))
    except (ImportError, ValueError) as e:
        raise ValueError(f"{out}: cannot open this URL with fsspec ({e})") from e
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(store.fs, LocalFileSystem):
        return LocalStore(store.root)
    return store
