# Source this on the lent GPU machine (device tool) from the repository root:
#   . benchmarks/device_env.sh
# It unpacks the carried GL loader packages (.gl/, NVIDIA EGL for pyrender) and installs the
# carried wheels (.whl/: pycocotools, pyrender and its OpenGL/trimesh/pyglet/freetype needs)
# into /tmp/site, then puts segan's sources on PYTHONPATH. Prepare both folders here with the
# commands in docs/device.md.
set -e
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export PYOPENGL_PLATFORM=egl
export PYTHONUNBUFFERED=1
set +e
