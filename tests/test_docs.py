"""The docs cannot go stale: every command shown in README.md and docs/*.md is run by this test.

Each fenced block is executed as its language and its ``<!-- docs-test: MODE -->`` line (just
above the fence) say:

* ``bash`` (mode ``run``, the default): the block as a script (``bash -e``), in a fresh
  directory outside the repository, with the project's ``harness`` on ``PATH``: exit status 0.
* ``bash`` with ``<!-- docs-test: check -->``: for commands that take minutes to hours (a full
  profile, a cluster sweep): the same script with ``harness run``/``harness search`` given
  ``--dry-run`` (every job composed and validated, nothing computed), ``make`` given ``-n`` (and
  the harness lines it would run dry-run), and any other ``harness`` command's ``--flags`` found
  in its ``--help`` (tests/docs_checker.py).
* ``console``: each ``$ command`` is run (in one fresh directory per block) and its output
  (standard output, or both streams) must be the lines shown; a line ``...`` stands for any
  number of lines, ``...`` inside a line for any text.
* ``python``: run with the project's interpreter; a ``text`` block marked
  ``<!-- docs-test: output -->`` right after it is its expected output.

Other languages (``text``, ``toml``, ...) are not commands.  A new block needs no registration:
it is run the way its fence says."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
CHECKER = Path(__file__).with_name("docs_checker.py")
EXECUTED = {"bash", "console", "python"}
MODES = {"bash": {"run", "check"}, "console": {"run"}, "python": {"run"}, "text": {"output"}}


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    mode: str | None
    text: str
    expected: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        mark = re.match(r"^<!-- docs-test: (\w+) -->$", lines[start - 1]) if start else None
        block = Block(page, start + 1, lang, mark.group(1) if mark else None, "\n".join(lines[start + 1:j]) + "\n")
        if block.mode == "output" and blocks:
            blocks[-1].expected = block.text
        blocks.append(block)
        i = j + 1
    return blocks


ALL = [b for page in PAGES for b in parse(page)]
RUN = [b for b in ALL if b.lang in EXECUTED]


def env(tmp: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ZSNAS_")}
    e.update(PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
             ZSNAS_DATA_DIR=str(ROOT.parent / "shared" / "data"), HOME=str(tmp), MPLBACKEND="Agg",
             COLUMNS="100", NO_COLOR="1")
    return e


def line_matches(expected: str, actual: str) -> bool:
    """Equal, where ``...`` inside ``expected`` stands for any text (a path, a time)."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def matches(expected: str, actual: str) -> bool:
    """``actual``'s lines are ``expected``'s, where a line ``...`` matches any run of lines and
    ``...`` inside a line any text."""
    exp = [ln.rstrip() for ln in expected.strip("\n").splitlines()]
    act = [ln.rstrip() for ln in actual.strip("\n").splitlines()]

    def go(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        if exp[i] == "...":
            return any(go(i + 1, k) for k in range(j, len(act) + 1))
        return j < len(act) and line_matches(exp[i], act[j]) and go(i + 1, j + 1)

    return go(0, 0)


CHECK_PRELUDE = f"""
harness() {{ case "$1" in run|search) command harness "$@" --dry-run > /dev/null ;;
                          *) "{sys.executable}" "{CHECKER}" flags "$@" ;; esac; }}
make() {{ "{sys.executable}" "{CHECKER}" make "$@"; }}
"""


def test_every_executed_block_has_a_known_mode():
    bad = [f"{b.id}: ```{b.lang} with mode {b.mode!r}" for b in ALL
           if b.mode is not None and b.mode not in MODES.get(b.lang, set())]
    assert not bad, bad
    assert len(RUN) >= 10, "the docs show commands; the parser found too few"


def test_readme_starts_with_the_two_commands():
    first = parse(ROOT / "README.md")[0]
    commands = [ln.split("#")[0].strip() for ln in first.text.splitlines() if ln.split("#")[0].strip()]
    assert (first.lang, commands) == ("bash", ["make reproduce", "make test"])


def test_readme_is_a_landing_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 170
    for page in ("configuration", "proxies", "spaces", "search", "reproducing", "extending", "data"):
        assert f"docs/{page}.md" in readme, page


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"^[a-z]+://", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_documented_commands_run(block: Block, tmp_path: Path):
    e = env(tmp_path)
    if block.lang == "python":
        out = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, env=e, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        if block.expected is not None:
            assert matches(block.expected, out.stdout), out.stdout
        return
    if block.lang == "console":
        commands = [ln[2:] for ln in block.text.splitlines() if ln.startswith("$ ")]
        outputs = re.split(r"(?m)^\$ .*\n", block.text)[1:]
        for command, expected in zip(commands, outputs):
            out = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=e, capture_output=True, text=True,
                                 timeout=600)
            actual = out.stdout + out.stderr
            # what is shown is standard output, or (a refusal, a log) both streams
            assert matches(expected, out.stdout) or matches(expected, actual), \
                f"$ {command}\n--- shown:\n{expected}--- got:\n{actual}"
        return
    script = (CHECK_PRELUDE if block.mode == "check" else "") + block.text
    out = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=e, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, f"{block.id} ({block.mode or 'run'}):\n{block.text}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


def test_every_cited_key_is_in_the_bibliography():
    """A table's source line, a benchmark's ``cite=`` and a doc page's paper column name keys of
    docs/references.bib, and every key there is a complete entry."""
    bib = (ROOT / "docs" / "references.bib").read_text()
    entries = dict(re.findall(r"@\w+\{(\w+),(.*?)\n\}", bib, flags=re.S))
    assert len(entries) >= 20
    for key, body in entries.items():
        assert re.search(r"\btitle\s*=", body) and re.search(r"\bauthor\s*=", body) and re.search(r"\byear\s*=", body), key
    cited = set()
    for path in [*(ROOT / "results" / "tables").glob("*.md"), *(ROOT / "results" / "tables").glob("*.tex")]:
        pairs = re.findall(r"\[([a-z]+\d{4}[a-z0-9]+)\]|\\cite\{([a-z]+\d{4}[a-z0-9]+)\}", path.read_text())
        cited |= {k for pair in pairs for k in pair if k}
    for path in [*(ROOT / "spaces").rglob("*.py"), *(ROOT / "harness").rglob("*.py")]:
        cited |= set(re.findall(r"(?:cite|CITE)\s*=\s*\"([a-z]+\d{4}[a-z0-9]+)\"", path.read_text()))
    for page in PAGES:
        cited |= set(re.findall(r"`([a-z]+(?:19|20)\d\d[a-z0-9]+)`", page.read_text()))
        cited |= set(re.findall(r"\| ([a-z]+(?:19|20)\d\d[a-z0-9]+)(?: \(|;| \|)", page.read_text()))
    assert {"jing2025wrcor", "mellor2021naswot", "krishnakumar2022suitezero"} <= cited
    assert not cited - set(entries), sorted(cited - set(entries))
