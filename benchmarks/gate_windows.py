"""The occluder gate's second rule on a GPU: `attached_hidden` on one window per object (session
23) against the whole-frame form it replaced (kept below as `whole_frame`), on the shipped
bundle's S_F for benchmarks/predict_latency.py's synthetic 20-object scene.

    python benchmarks/gate_windows.py      # on the GPU machine
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_latency import synthetic_scene  # noqa: E402
from segan.inference import SeganPredictor  # noqa: E402
from segan.occluder_gate import attached_hidden  # noqa: E402


def whole_frame(hidden: torch.Tensor, visible: torch.Tensor, check_every: int = 32
                ) -> torch.Tensor:
    """attached_hidden before session 23: every step over the whole (N, H, W) frame."""
    m = hidden[:, None].to(torch.float32)
    x = F.max_pool2d(visible[:, None].to(torch.float32), 3, 1, 1) * m
    while True:
        before = x
        for _ in range(check_every):
            x = F.max_pool2d(x, 3, 1, 1) * m
        if torch.equal(x, before):
            return x[:, 0] > 0


def main() -> None:
    p = SeganPredictor.pretrained("cuda")
    image, visible = synthetic_scene(20, 500, 0, True)
    scene = p.predict(image, visible)
    probs = torch.from_numpy(scene.full_probs).cuda()
    vis = torch.from_numpy(visible).cuda()
    hidden = (probs >= 0.5) & ~vis
    rows = []
    for name, fn in (("whole frame (before)", whole_frame), ("windows", attached_hidden)):
        out = fn(hidden, vis)
        times = []
        for _ in range(30):
            torch.cuda.synchronize()
            t = time.perf_counter()
            fn(hidden, vis)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t) * 1e3)
        rows.append((name, sorted(times)[15], out))
    same = torch.equal(rows[0][2], rows[1][2])
    print(f"{torch.cuda.get_device_name()}: attached_hidden on the bundle's S_F, 20 objects "
          f"500x500, median of 30; outputs equal: {same}")
    for name, ms, _ in rows:
        print(f"| {name} | {ms:.2f} ms |")


if __name__ == "__main__":
    main()
