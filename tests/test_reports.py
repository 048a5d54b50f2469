"""The reporting layer's shared parts: the table writer, the figure saver, the artifact logger, and
reports that ask a space's benchmark for published numbers instead of knowing spaces by name."""
from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spaces
from conftest import needs_data
from harness.reports import agreement, artifacts, style, tables
from harness.reports import search as search_report
from harness.reports.tables import MeanStd, Table, Tex
from spaces.benchmarks import PublishedSearch, ReferenceScores, TableBenchmark, nb201_benchmark

REPORTS = Path(__file__).resolve().parents[1] / "harness" / "reports"

# ------------------------------------------------------------------------------------------------
# the table writer

AWKWARD = ["a|b", "50% & $x$_{1}", 'say "hi", then go', "–"]


def _table() -> Table:
    return Table(["name", "value ρ", "note"],
                 [[AWKWARD[0], MeanStd(0.61234, 0.02), AWKWARD[1]],
                  [AWKWARD[2], MeanStd(float("nan"), 0.1), AWKWARD[3]],
                  [Tex(r"\textbf{bold}"), MeanStd(1.0, float("nan"), digits=1), ""]],
                 align="lrl", notes=["A caption with a | kept as prose."])


def _md_cells(line: str) -> list[str]:
    inner = line.strip()[2:-2]
    return [c.replace("\\|", "|") for c in re.split(r" (?<!\\)\| ", inner)]


def test_markdown_escapes_cells_only_and_aligns():
    md = _table().markdown()
    lines = md.splitlines()
    assert lines[0] == "A caption with a | kept as prose." and lines[1] == ""
    assert lines[2] == "| name | value ρ | note |"
    assert lines[3] == "|:---|---:|:---|"
    assert lines[4] == "| a\\|b | 0.612 ± 0.020 | 50% & $x$_{1} |"
    assert lines[5] == '| say "hi", then go | – | – |'
    assert lines[6] == "| \\textbf{bold} | 1.0 |  |"
    assert Table(["a", "b"], [["1", "2"]]).markdown().splitlines()[1] == "|---|---|"


def test_markdown_round_trip():
    t = _table()
    rows = [_md_cells(line) for line in t.markdown().splitlines()[2:] if not line.startswith("|:")]
    expected = [[str(c) for c in r] for r in [t.header, *t.rows]]
    assert rows == expected


def test_latex_escapes_plain_cells_and_keeps_tex_and_math():
    tex = _table().latex()
    assert tex.startswith("\\begin{tabular}{lrl}\n\\toprule\n")
    assert "name & value $\\rho$ & note \\\\" in tex
    assert "a|b & $0.612 \\pm 0.020$ & 50\\% \\& \\$x\\$\\_\\{1\\} \\\\" in tex
    assert 'say "hi", then go & -- & -- \\\\' in tex
    assert "\\textbf{bold} & $1.0$ &  \\\\" in tex
    assert tex.endswith("\\bottomrule\n\\end{tabular}\n")
    assert "caption" not in tex  # notes are Markdown's; LaTeX gets comments and a footnote


def test_latex_groups_comments_and_footnote():
    t = Table(["proxy", "a τ", "a ρ", "b τ", "b ρ", "seeds"], [["x_y", "1", "2", "3", "4", "5"]],
              latex_header=["Proxy", "τ", "ρ", "τ", "ρ", "Seeds"],
              groups=[("", 1), ("a_1", 2), ("b", 2), ("", 1)], latex_spec="l cc cc r",
              comments=["50% done " + "word " * 30, Tex("Needs \\usepackage{booktabs}.")], footnote="Mean ± std.")
    lines = t.latex().splitlines()
    comments = [line for line in lines if line.startswith("%")]
    assert comments[0].startswith("% 50\\% done word") and all(len(c) <= 98 for c in comments)
    assert comments[-1] == "% Needs \\usepackage{booktabs}."
    body = lines[len(comments):]
    assert body[:5] == ["\\begin{tabular}{l cc cc r}", "\\toprule",
                        " & \\multicolumn{2}{c}{a\\_1} & \\multicolumn{2}{c}{b} & \\\\",
                        "\\cmidrule(lr){2-3} \\cmidrule(lr){4-5}",
                        "Proxy & $\\tau$ & $\\rho$ & $\\tau$ & $\\rho$ & Seeds \\\\"]
    assert "x\\_y & 1 & 2 & 3 & 4 & 5 \\\\" in body
    assert body[-2:] == ["\\multicolumn{6}{l}{\\footnotesize Mean $\\pm$ std.} \\\\", "\\end{tabular}"]


def test_csv_quotes_and_round_trips():
    t = _table()
    text = t.csv()
    assert text.splitlines()[0] == "name,value ρ,note"
    assert '"say ""hi"", then go"' in text  # quotes doubled, the comma kept inside the cell
    back = list(csv.reader(io.StringIO(text)))
    assert back == [[str(c) for c in r] for r in [t.header, *t.rows]]
    assert back[1][1] == "0.612 ± 0.020" and back[2][1] == "–"


def test_write_and_bad_tables(tmp_path):
    paths = tables.write(_table(), tmp_path / "t", "x", ("md", "tex", "csv"))
    assert [p.name for p in paths] == ["x.md", "x.tex", "x.csv"]
    assert paths[2].read_text(encoding="utf-8") == _table().csv()
    with pytest.raises(ValueError, match="unknown table format"):
        _table().render("html")
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        Table(["a", "b"], [["1"]])
    with pytest.raises(ValueError, match="groups must span"):
        Table(["a", "b"], [], groups=[("x", 1)])


# ------------------------------------------------------------------------------------------------
# figures and tracked artifacts


def _figure():
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    return fig


def test_save_writes_every_output_and_closes_the_figure(tmp_path, monkeypatch):
    from figure_checks import png_dpi

    plt = style.pyplot()
    with style.figure_style():
        fig = _figure()
        paths = style.save(fig, tmp_path / "a.png", dpi=50)
    assert not plt.fignum_exists(fig.number)
    # every report figure: a PNG of at least 200 dpi (the floor wins over a lower dpi) and a vector PDF
    assert [p.name for p in paths] == ["a.png", "a.pdf"]
    assert png_dpi(paths[0]) >= 200 and paths[1].read_bytes()[:5] == b"%PDF-"
    assert b"CreationDate" not in paths[1].read_bytes()  # an unchanged figure is an unchanged file
    # how every report figure is saved is a change of OUTPUTS alone
    monkeypatch.setattr(style, "OUTPUTS", ((".png", 400),))
    with style.figure_style():
        (big,) = style.save(_figure(), tmp_path / "b.png", dpi=50)
    import matplotlib.image as mpimg

    assert mpimg.imread(big).shape[0] == 2 * mpimg.imread(paths[0]).shape[0]


def test_figure_style_leaks_no_rcparams():
    import matplotlib

    before = dict(matplotlib.rcParams)
    with style.figure_style():
        assert matplotlib.rcParams["axes.grid"]  # seaborn's whitegrid
        assert matplotlib.rcParams["figure.constrained_layout.use"]
        assert matplotlib.rcParams["pdf.fonttype"] == 42  # TrueType fonts in the PDF
    assert dict(matplotlib.rcParams) == before


def test_style_helpers():
    assert style.wrap_label("nb201: cifar10-valid/valid") == "nb201:\ncifar10-valid/valid"
    assert style.wrap_label("cifar10/test") == "cifar10/test"
    assert style.seeds_note([3, 3]) == "mean ± std over 3 seeds"
    assert style.seeds_note([1, 1]) == "one seed: no error bars"
    assert style.seeds_note([1, 10]).endswith("one seed: no bar")
    assert style.label_width(["abc\nabcdefgh"]) > style.label_width(["abcdefg"])


class _Handle:
    def __init__(self):
        self.logged = []

    def log_artifact(self, path, artifact_path=None):
        self.logged.append((Path(path).name, artifact_path))


def test_log_artifacts_and_job_figures(tmp_path, caplog):
    from test_report import _write_job

    handle = _Handle()
    (tmp_path / "a.csv").write_text("x\n")
    assert artifacts.log_artifacts(handle, [tmp_path / "a.csv", None], "records") == [tmp_path / "a.csv"]
    assert handle.logged == [("a.csv", "records")]
    _write_job(tmp_path / "job", 0)
    logged = artifacts.log_job_figures(handle, tmp_path / "job")
    assert [p.name for p in logged] == [f"job_{k}.{e}" for k in ("scatter", "heatmap", "tau") for e in ("png", "pdf")]
    assert [name for name, _ in handle.logged[1:]] == [p.name for p in logged]
    (tmp_path / "empty").mkdir()
    assert artifacts.log_job_figures(handle, tmp_path / "empty") == []  # no records: a warning, no error
    assert "could not draw the job's figures" in caplog.text


def test_a_search_figure_failure_is_a_warning(tmp_path, caplog):
    assert search_report.trajectory_figure([{"cost_s": 1.0}], {"optimum": 1.0}, tmp_path / "t.png") == []
    assert "could not draw the trajectory figure" in caplog.text


# ------------------------------------------------------------------------------------------------
# space knowledge stays in spaces/: the reports ask the benchmark


def test_no_report_branches_on_a_space_name():
    names = "|".join(re.escape(n) for n in spaces.list_spaces())
    pattern = re.compile(rf"""["']({names})["']""")
    for path in REPORTS.glob("*.py"):
        assert not pattern.search(path.read_text()), f"{path.name} names a space"


def test_the_nb201_benchmark_answers_with_published_numbers():
    bench = nb201_benchmark()
    found = bench.published_search("cifar10")
    assert [(p.method, p.setting, p.source, p.accuracy, p.cite) for p in found] == [
        ("NASWOT", "N=1000", "Mellor et al. 2021", 92.96, "mellor2021naswot"),
        ("TE-NAS", "", "Chen et al. 2021", 93.9, "chen2021tenas")]
    assert bench.cite == "dong2020nasbench201"
    assert bench.published_search("cifar10-valid") == []
    assert bench.suite_zero_reference("cifar100") is None  # none published for those images: no file read
    plain = TableBenchmark("x/none.csv", key_column="arch", columns={}, protocols={})
    assert plain.published_search("cifar10") == [] and plain.suite_zero_reference("cifar100") is None


class _Space:
    def __init__(self, benchmark, **_):
        self.benchmark = benchmark


class _Bench:
    """A plugin's benchmark that says nothing about published numbers."""

    def key_of(self, arch):
        return str(arch)


def _register(monkeypatch, name, bench):
    monkeypatch.setitem(spaces._SPACES, name, lambda **kw: _Space(bench, **kw))


def _search_records(root: Path, space: str) -> Path:
    from test_search_report import write_run

    for seed in range(2):
        write_run(root, seed, seed=seed, acc=90.0 + seed)
        f = root / f"job{seed}" / "search.json"
        f.write_text(json.dumps({**json.loads(f.read_text()), "space": space}))
    return root


def test_search_report_shows_what_the_benchmark_publishes(tmp_path, monkeypatch):
    toy = TableBenchmark("toy/none.csv", key_column="arch", columns={}, protocols={},
                         published_search={"cifar10": [PublishedSearch("ToyNAS", "N=5", "Doe 2030", 91.5,
                                                                        cite="doe2030toy", where="Table 9")]},
                         cite="roe2029toybench")
    _register(monkeypatch, "toy_published", toy)
    _register(monkeypatch, "toy_silent", TableBenchmark("toy/none.csv", key_column="arch", columns={}, protocols={}))
    _register(monkeypatch, "toy_plugin", _Bench())
    out = search_report.build([_search_records(tmp_path / "p", "toy_published")], tmp_path / "o", "p")
    md = (tmp_path / "o" / "tables" / "p.md").read_text()
    # the published accuracy and its regret to the benchmark's optimum (94.37 - 91.50); no cost is published
    assert "| optimum (benchmark) |  | 94.37 | 0 |  |  |  |" in md
    assert "| ToyNAS, N=5 (Doe 2030, published) |  | 91.50 | 2.87 |  |  |  |" in md
    assert "NASWOT" not in md and "TE-NAS" not in md
    # each quoted number names its source: the paper (and where in it) and the benchmark, by BibTeX key
    assert ("Sources of the quoted numbers (BibTeX keys: docs/references.bib): optimum (benchmark): the "
            "toy_published table [roe2029toybench]; ToyNAS, N=5: Doe 2030, Table 9 [doe2030toy].") in md
    tex = (tmp_path / "o" / "tables" / "p.tex").read_text()
    assert ("Sources: optimum (benchmark): the toy\\_published table \\cite{roe2029toybench}; ToyNAS, N=5: Doe 2030, "
            "Table 9 \\cite{doe2030toy}.") in tex
    assert search_report.published(out["summary"]) == [("ToyNAS, N=5 (Doe 2030, published)", "ToyNAS N=5",
                                                        {"cifar10": 91.5})]
    for name in ("toy_silent", "toy_plugin"):
        out = search_report.build([_search_records(tmp_path / name, name)], tmp_path / "o", name)
        md = (tmp_path / "o" / "tables" / f"{name}.md").read_text()
        assert "published" not in md and search_report.published(out["summary"]) == []
        assert md.splitlines()[-1].startswith("| optimum (benchmark) |")
        assert f"optimum (benchmark): the {name} table." in md  # no key stated: none invented


def test_agreement_asks_the_benchmark_for_its_reference(tmp_path, monkeypatch):
    archs = [f"a{i}" for i in range(20)]
    theirs = np.linspace(0.0, 1.0, 20)

    class Published(_Bench):
        def suite_zero_reference(self, dataset):
            if dataset != "cifar10":
                return None
            return ReferenceScores("toy scores", archs, {"synflow": theirs}, cite="doe2030scores")

    _register(monkeypatch, "toy_reference", Published())
    _register(monkeypatch, "toy_plugin", _Bench())
    ref, key_of = agreement.suite_zero_reference("toy_reference", "cifar10")
    assert list(ref["key"]) == archs and key_of("a3") == "a3"
    assert agreement.suite_zero_reference("toy_reference", "cifar100") is None
    assert agreement.suite_zero_reference("toy_plugin", "cifar10") is None
    for space in ("toy_reference", "toy_plugin"):
        job = tmp_path / space
        job.mkdir()
        pd.DataFrame({"space": space, "dataset": "cifar10", "seed": 0, "arch_index": range(20), "arch": archs,
                      "proxy": "synflow", "score": theirs ** 2, "status": "ok", "seconds": 0.1,
                      "n_skipped": 0}).to_csv(job / "scores.csv", index=False)
        pd.DataFrame([{"space": space, "dataset": "cifar10", "split": "valid", "proxy": "synflow", "seed": 0,
                       "tau": 1.0, "rho": 1.0, "n_archs": 20, "n_nan": 0, "n_inf": 0, "sec_per_arch": 0.1,
                       "protocol": "toy"}]).to_csv(job / "metrics.csv", index=False)
    paths = agreement.build([tmp_path / "toy_reference"], tmp_path / "out", "agree")
    assert [p.name for p in paths] == ["agree_cifar10.md", "agree_cifar10.csv"]
    assert "| synflow | synflow | 0 | 20 | 0 | 1.000 | 1.000 |" in paths[0].read_text()
    assert "Published scores: toy scores [doe2030scores] (BibTeX keys: docs/references.bib)." in paths[0].read_text()
    with pytest.raises(ValueError, match="no records share"):
        agreement.build([tmp_path / "toy_plugin"], tmp_path / "out", "none")


@needs_data
def test_nb201_imagenet16_reference_is_joined_through_the_cell_tuple():
    bench = nb201_benchmark()
    ref = bench.suite_zero_reference("ImageNet16-120")
    assert len(ref.keys) == 9445 and set(ref.keys) <= set(bench.keys())
    first = pd.read_csv(Path(bench._source).parent / "suite_zero_proxies_imagenet16.csv", nrows=1).iloc[0]
    row = bench.column("naslib_tuple", as_str=True, per="key").tolist().index(first["net"])
    assert ref.keys[0] == bench.keys()[row]
    assert math.isclose(ref.columns["synflow"][0], first["synflow"], rel_tol=1e-15)
