"""`python -m segan.train ARGS` = `segan train ARGS`; the entry torchrun launches:

    torchrun --nproc_per_node 8 -m segan.train --config configs/segan.yaml --data D --out RUN
"""

import sys

from segan.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
