"""``python -m harness <command> [args]`` = ``harness <command> [args]`` (see :mod:`harness.cli`)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from harness.cli import main

    sys.exit(main())
