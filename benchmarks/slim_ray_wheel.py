"""Repack a ray wheel without what `segan generate --ray` never loads, so it fits the device
tool's 64 MiB carry limit (ray 2.60's x86_64 wheel is 76 MiB).

    python benchmarks/slim_ray_wheel.py ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl .whl/

Dropped: ray/jars/ (the Java worker runtime, 33 MiB: only Java and cross-language tasks use
it) and the dashboard's JavaScript source maps (only a browser's debugger reads them). Every
other file is copied unchanged, so its RECORD hash stays valid; the dropped files' RECORD
lines are removed. The result installs with `pip install --no-deps` like the original.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path


def dropped(name: str) -> bool:
    return name.startswith("ray/jars/") or (
        name.startswith("ray/dashboard/") and name.endswith(".js.map")
    )


def slim(src: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / src.name
    if dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: the slim wheel would overwrite its source; pick another folder")
    tmp = dst.with_name(dst.name + ".tmp")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(
        tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9
    ) as zout:
        records = [n for n in zin.namelist()
                   if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise ValueError(f"{src}: not a wheel (expected one .dist-info/RECORD)")
        for info in zin.infolist():
            if dropped(info.filename):
                continue
            data = zin.read(info)
            if info.filename == records[0]:
                lines = data.decode().splitlines(keepends=True)
                data = "".join(ln for ln in lines if not dropped(ln.split(",", 1)[0])).encode()
            zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(dst)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    dst = slim(args.wheel, args.out_dir)
    mib = 1024 * 1024
    print(f"{dst}: {dst.stat().st_size / mib:.1f} MiB (was {args.wheel.stat().st_size / mib:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
