"""``python -m harness.search [overrides]`` = ``harness search [overrides]``."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from harness.search.run import main

    sys.exit(main())
