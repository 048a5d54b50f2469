"""Checks behind the docs test's ``check`` blocks (tests/test_docs.py), called from the block's
shell script through the functions ``harness`` and ``make`` that shadow the real commands:

* ``docs_checker.py flags harness-args...``: a non-Hydra command (``report``, ``store merge``,
  ``convert nb201``, ...) exists and every ``--flag`` the docs give it is in its ``--help``;
* ``docs_checker.py make make-args...``: the target exists (``make -n``) and every
  ``harness run``/``harness search`` line it would run composes and validates (``--dry-run``).

``harness run``/``harness search`` lines of a block are run with ``--dry-run`` by the shell
function itself.  Exit status 0: the documented command is current."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = str(Path(sys.executable).parent / "harness")


def _help(words: list[str]) -> str | None:
    out = subprocess.run([HARNESS, *words, "--help"], capture_output=True, text=True, timeout=120)
    return out.stdout + out.stderr if out.returncode == 0 else None


def flags(args: list[str]) -> int:
    if not args:
        print("docs check: `harness` without a command", file=sys.stderr)
        return 1
    positional = [a for a in args[1:3] if not a.startswith("-")]
    text = None
    for n in range(len(positional), -1, -1):  # `store merge --help`, else `store --help`
        text = _help([args[0], *positional[:n]])
        if text is not None:
            break
    if text is None:
        print(f"docs check: `harness {args[0]} --help` fails: not a command", file=sys.stderr)
        return 1
    missing = [f for f in (a.split("=", 1)[0] for a in args if a.startswith("--")) if f not in text]
    if missing:
        print(f"docs check: `harness {' '.join(args)}`: {missing} not in its --help", file=sys.stderr)
        return 1
    return 0


HARNESS_LINE = re.compile(r"^(?:[A-Z_]+=\S+ )*\S*harness (run|search) ")


def make(args: list[str]) -> int:
    out = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print(f"docs check: `make {' '.join(args)}`: {out.stderr.strip()}", file=sys.stderr)
        return 1
    joined = out.stdout.replace("\\\n", " ")  # a recipe's continued lines, as the shell reads them
    lines = [ln.strip() for ln in joined.splitlines() if HARNESS_LINE.match(ln.strip()) and "$" not in ln]
    for line in lines:
        words = shlex.split(line)
        while "=" in words[0] and not words[0].startswith("-"):  # VAR=value prefixes
            words.pop(0)
        job = subprocess.run([HARNESS, *words[1:], "--dry-run"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        if job.returncode != 0:
            print(f"docs check: `make {' '.join(args)}` runs `{line}`, which is not valid:\n{job.stderr}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    kind, rest = sys.argv[1], sys.argv[2:]
    raise SystemExit({"flags": flags, "make": make}[kind](rest))
