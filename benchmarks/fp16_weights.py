"""A run's model.safetensors with its floating tensors in fp16, metadata kept: a trained run's
weights small enough to come back from the device (files of at most 16 MiB), still loadable as
the run (`VisibleSegmenter.from_checkpoint`, `segan export-bundle --visible-segmenter`).

    python3 benchmarks/fp16_weights.py RUN/model.safetensors OUT/model.safetensors
"""

import sys

from safetensors import safe_open
from safetensors.torch import load_file, save_file


def main(src: str, dst: str) -> None:
    with safe_open(src, "pt") as f:
        meta = f.metadata()
    save_file({k: v.half() if v.is_floating_point() else v for k, v in load_file(src).items()},
              dst, metadata=meta)


if __name__ == "__main__":
    main(*sys.argv[1:3])
