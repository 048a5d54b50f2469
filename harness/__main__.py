"""``harness <command> [args]`` (or ``python -m harness <command> [args]``): one entry point for
the harness's commands.

    harness run [hydra overrides]      a scoring job or sweep (= python -m harness.cli)
    harness search [hydra overrides]   a zero-shot search (= python -m harness.search)
    harness bench [options]            timings, the engine against the alternatives (= python -m harness.bench)
    harness report | search-report | agreement | reference | store | convert [options]
"""
from __future__ import annotations

import importlib
import os
import sys

#: command -> (module, whether its main is a Hydra app reading sys.argv)
COMMANDS = {"run": ("harness.cli", True), "search": ("harness.search", True), "bench": ("harness.bench", False),
            "report": ("harness.report", False), "search-report": ("harness.search_report", False),
            "agreement": ("harness.agreement", False), "reference": ("harness.reference", False),
            "store": ("harness.store", False), "convert": ("harness.convert", False)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    module, hydra_app = COMMANDS[argv[0]]
    entry = importlib.import_module(module).main
    if hydra_app:  # Hydra parses sys.argv itself
        sys.argv = [f"harness {argv[0]}", *argv[1:]]
        entry()
        return 0
    return int(entry(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
