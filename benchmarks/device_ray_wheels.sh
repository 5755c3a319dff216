#!/usr/bin/env bash
# Put ray and the packages it needs, as Python 3.12 x86_64 wheels, into .whl/ for the lent GPU
# machine (whose image has no ray): `. benchmarks/device_env.sh` then installs them with the
# rest of .whl/. ray's wheel (76 MiB) is over the device tool's 64 MiB carry limit, so it is
# repacked without its Java runtime (benchmarks/slim_ray_wheel.py): 43 MiB. Run from the
# repository root on the development machine; .whl/ must be ignored (docs/device.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$tmp" \
  ray==2.60.0 msgpack==1.2.4 click==8.5.1 jsonschema==4.26.0 \
  jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 attrs==26.1.0 \
  requests==2.34.2 urllib3==2.8.0 idna==3.20 certifi==2026.10.19.post1 \
  charset-normalizer==3.5.3
mkdir -p .whl
rm -f .whl/ray-*.whl
"$PY" benchmarks/slim_ray_wheel.py "$tmp"/ray-2.60.0-*.whl .whl/
find "$tmp" -name '*.whl' ! -name 'ray-*' -exec cp {} .whl/ \;
du -sh .whl
