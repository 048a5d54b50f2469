"""The progress reporter: plain periodic lines with rate and ETA off a terminal (a fake clock, no
timing), a tqdm bar on one, silence when the logger is quietened; the closing outputs block."""
from __future__ import annotations

import io
import logging

import pytest

from harness.progress import Progress, format_duration, format_rate, outputs_block
from harness.tracking import tracking_how_to_open


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def logger():
    lg = logging.getLogger("test.progress")
    lg.setLevel(logging.INFO)
    yield lg
    lg.setLevel(logging.NOTSET)


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.progress"]


def test_off_a_terminal_a_line_every_n_items_with_rate_and_eta(logger, caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="test.progress")
    with Progress(100, logger=logger, verb="scored", what="archs", every=25, interval=1e9, bar=False,
                  clock=clock) as p:
        for _ in range(100):
            clock.t += 0.5  # two architectures a second
            p.update()
        assert not p.uses_bar
    got = lines(caplog)
    assert got[:3] == ["scored 25/100 archs (2/s, ETA 38s)", "scored 50/100 archs (2/s, ETA 25s)",
                       "scored 75/100 archs (2/s, ETA 12s)"]
    assert got[3] == "scored 100/100 archs in 50s (2/s)"  # the final line once, not a fourth periodic one
    assert len(got) == 4


def test_off_a_terminal_a_slow_loop_logs_every_interval_seconds(logger, caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="test.progress")
    p = Progress(10, logger=logger, verb="scored", what="archs", every=1000, interval=30, bar=False, clock=clock)
    for _ in range(4):
        clock.t += 20  # 20 s per architecture: a line at most every 30 s
        p.update()
    p.close()
    got = lines(caplog)
    assert got == ["scored 2/10 archs (20 s/arch, ETA 2m40s)", "scored 4/10 archs (20 s/arch, ETA 2m00s)",
                   "stopped: scored 4/10 archs in 1m20s (20 s/arch)"]


def test_the_detail_is_appended_and_asked_for_only_when_a_line_is_written(logger, caplog):
    clock, calls = Clock(), []

    def detail() -> str:
        calls.append(1)
        return "best 0.5"

    caplog.set_level(logging.INFO, logger="test.progress")
    with Progress(10, logger=logger, verb="step", what="steps", every=5, interval=1e9, bar=False, clock=clock,
                  detail=detail) as p:
        for _ in range(10):
            clock.t += 1
            p.update()
    assert lines(caplog) == ["step 5/10 steps (1/s, ETA 5s): best 0.5", "step 10/10 steps in 10s (1/s): best 0.5"]
    assert len(calls) == 2


def test_a_quietened_logger_gets_neither_lines_nor_a_bar(logger, caplog):
    logger.setLevel(logging.WARNING)
    stream = io.StringIO()
    with Progress(10, logger=logger, every=1, bar=True, stream=stream) as p:
        for _ in range(10):
            p.update()
    assert not p.uses_bar and stream.getvalue() == "" and lines(caplog) == []


def test_on_a_terminal_a_tqdm_bar_and_one_final_log_line(logger, caplog):
    from tqdm import tqdm

    stream = io.StringIO()
    caplog.set_level(logging.INFO, logger="test.progress")
    with Progress(8, logger=logger, verb="scored", what="archs", every=1, bar=True, stream=stream) as p:
        assert p.uses_bar and isinstance(p._bar, tqdm)
        for _ in range(8):
            p.update()
        assert p._bar.n == 8 and p._bar.total == 8
    assert "0/8" in stream.getvalue() and "arch/s" in stream.getvalue()  # tqdm's own drawing
    got = lines(caplog)
    assert len(got) == 1 and got[0].startswith("scored 8/8 archs in ")  # no periodic lines beside the bar


def test_the_terminal_test_and_its_override(logger, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("ZSNAS_PROGRESS", raising=False)
    assert Progress(3, logger=logger, stream=Tty()).uses_bar
    assert not Progress(3, logger=logger, stream=io.StringIO()).uses_bar
    monkeypatch.setenv("ZSNAS_PROGRESS", "lines")
    assert not Progress(3, logger=logger, stream=Tty()).uses_bar
    monkeypatch.setenv("ZSNAS_PROGRESS", "bar")
    assert Progress(3, logger=logger, stream=io.StringIO()).uses_bar


def test_every_must_be_positive(logger):
    with pytest.raises(ValueError, match="every=0"):
        Progress(3, logger=logger, every=0)


def test_formats():
    assert format_duration(0) == "0s" and format_duration(3599) == "59m59s" and format_duration(-1) == "?"
    assert format_rate(0, 5, "arch") == "?/s" and format_rate(10, 0, "arch") == "?/s"
    assert format_rate(1, 1, "arch") == "1/s"


def test_outputs_block_aligns_labels_and_keeps_notes(tmp_path):
    text = outputs_block([("records", tmp_path, "scores.csv, metrics.csv"), ("store", "s.sqlite", "")])
    assert text.splitlines() == ["results:", f"  records  {tmp_path}  (scores.csv, metrics.csv)",
                                 "  store    s.sqlite"]


def test_how_to_open_a_tracking_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = f"sqlite:///{tmp_path.resolve()}/mlruns.db"
    assert tracking_how_to_open(here) == f"open with: harness ui --store {here}"
    (tmp_path / "Makefile").write_text("all:\n\ttrue\nui:  ## serve mlruns.db\n\tmlflow ui\n")
    assert tracking_how_to_open(here) == f"open with: make ui, or harness ui --store {here}"
    assert tracking_how_to_open("sqlite:////elsewhere/x.db") == \
        "open with: harness ui --store sqlite:////elsewhere/x.db"
    assert tracking_how_to_open("http://host:5000") == "open http://host:5000 in a browser"
