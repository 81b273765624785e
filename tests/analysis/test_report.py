"""The reproducibility report: record text escaped in HTML and Markdown, a page that needs nothing
else, atomic writing, and the committed reference runs' reports (every run has one, and it is what
`harness report` writes today: `make reports` regenerates them)."""

from __future__ import annotations

import base64
import io
import json
import re
from html import unescape
from html.parser import HTMLParser

import pytest

from harness.analysis._report import write_report
from harness.cli._main import main
from tests.helpers import REPO, write_synthetic_run

HOSTILE = "<img src=x onerror=alert(1)>|`*_[x](javascript:alert(1))"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(src.split(",", 1)[1]) for tag, attrs in _tags(html) if tag == "img" for src in [attrs["src"]]]


def test_record_text_is_escaped_in_both_reports(tmp_path):
    run = write_synthetic_run(tmp_path / "run", name=HOSTILE)
    md_path, html_path = write_report(run, resamples=200)
    html, md = html_path.read_text(), md_path.read_text()

    tags = _tags(html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in tags)
    assert not any("onerror" in attrs for _, attrs in tags)
    assert not any(tag in ("script", "link", "iframe", "object") for tag, _ in tags)
    assert all(attrs["src"].startswith("data:image/png;base64,") for tag, attrs in tags if tag == "img")
    assert not any((attrs.get("href") or "").startswith(("http", "javascript")) for _, attrs in tags)

    import markdown_it

    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(md)  # raw HTML passes through
    rendered_tags = _tags(rendered)
    assert not any(tag in ("img", "a", "script") for tag, _ in rendered_tags)
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered
    # The hostile name's pipe did not split its table row: every row of the results table has 7 cells.
    results = rendered.split("<h2>Results</h2>", 1)[1].split("</table>", 1)[0]
    assert {row.count("<td") for row in results.split("<tr>")[2:]} == {7}


def test_report_holds_what_was_run_and_its_plots(tmp_path):
    run = write_synthetic_run(tmp_path / "run")
    md_path, html_path = write_report(run, tmp_path / "out", resamples=200)
    md, html = md_path.read_text(), html_path.read_text()
    for text in ("harness eval --model 'tiny+quantize:bits=4|8' --tasks quizzes,gen,ppl", "dddddddddddd", "jigsaw-bilstm"):
        assert text in md and text in unescape(html)
    assert "| `+quantize:bits=4` | `quiz_a` | `acc` | 8 | 0.6250 | 0.5000 | -0.1250 [" in md  # the paired comparison
    assert "### Sweep `quantize: bits of tiny`" in md
    from PIL import Image

    images = [Image.open(io.BytesIO(data)) for data in _images(html)]
    assert len(images) == 1 + 3  # the bits sweep; gen, ppl and quizzes against weight (GFLOPs do not vary)
    assert all(image.format == "PNG" and image.width > 300 for image in images)


def test_nothing_is_written_when_rendering_fails(tmp_path, monkeypatch):
    run = write_synthetic_run(tmp_path / "run")
    (run / "report.md").write_text("earlier report\n")
    import harness.analysis._plots

    def broken(*args):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(harness.analysis._plots, "front_png", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(run, resamples=50)
    assert (run / "report.md").read_text() == "earlier report\n"
    assert not (run / "report.html").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".report")]


@pytest.mark.slow
def test_committed_wrappers_run_report(tmp_path, capsys):
    run = REPO / "results" / "20261128T153000Z-5f064762"
    assert main(["report", str(run), "--out", str(tmp_path), "--resamples", "200"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "report.md"), str(tmp_path / "report.html")]
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert len(html.encode()) < 1_000_000 and len(md.encode()) < 1_000_000
    command = " ".join(json.loads((run / "record.json").read_text())["command"][:3])
    assert command in md
    assert len(_images(html)) == 7 + 6  # seven sweeps; three headline metrics against weight and GFLOPs
    assert re.search(r"\| `\+quantize:bits=4` \| `wikitext2_ppl` \| `word_perplexity` \| 8 \| 29\.0537 \| 38\.2880 \|", md)
    # Cost: 4-bit codes with their zero points and scales in the linear layers, the float32 embedding
    # (tied head) and norms beside them make the whole model's bits per parameter.
    assert "| weight (MB) | quantized linear layers: stored bits per weight | whole model: stored bits per parameter |" in md
    assert "| `smollm2-135m-instruct+quantize:bits=4` | 0.3 | 269.9 | 1330 | 0 |  | 170.62 | 4.3125 | 10.1472 |" in md
    assert "| `smollm2-135m-instruct` | 20.3 | 296.7 | 1330 | 0 |  | 538.06 |  | 32.0000 |" in md


def test_reports_hold_no_sample_text(tmp_path):
    """The toxicity run's sample logs hold model continuations; the report shows none of them."""
    run = REPO / "results" / "20261128T123618Z-8afde4d7"
    first = json.loads((run / "samples" / "9782ed11d7f2" / "rtp_challenging.jsonl").read_text().splitlines()[0])
    continuations = [text.strip() for text in first["resps"][0] if len(text.strip()) > 20]
    md_path, html_path = write_report(run, tmp_path, resamples=50)
    for path in (md_path, html_path):
        text = path.read_text()
        assert continuations and not any(c in text for c in continuations)
        assert "rtp_challenging" in text


def test_a_sweep_with_a_variant_without_a_number_still_plots():
    """A metric can be nan (a score that overflowed) or missing: its variant keeps its tick."""
    from PIL import Image

    from harness.analysis import _plots
    from harness.analysis._curves import Curve, CurvePoint, Sweep, SweepPoint

    points = (CurvePoint("high", None, float("nan"), None), CurvePoint("low", None, None, None), CurvePoint("2-4", None, 0.4, 0.07))
    sweep = Sweep(
        run="r",
        base="b" * 64,
        base_model="tiny",
        wrapper="dola",
        parameter="layers",
        fixed=(),
        points=tuple(SweepPoint(str(i), f"tiny+dola:layers={p.value}", p.value, None) for i, p in enumerate(points)),
        curves=(Curve("truthfulqa_mc2", "acc", True, 0.5, points),),
    )
    image = Image.open(io.BytesIO(_plots.sweep_png(sweep)))
    assert image.format == "PNG" and image.width > 300


RUNS = sorted(p.parent for p in (REPO / "results").glob("*/record.json"))


def test_every_committed_run_has_its_report():
    missing = [f"{run.name}/{name}" for run in RUNS for name in ("report.md", "report.html") if not (run / name).is_file()]
    assert RUNS and missing == [], "make reports"


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_a_committed_report_is_what_harness_report_writes_today(tmp_path, run):
    md_path, html_path = write_report(run, tmp_path)
    assert md_path.read_text() == (run / "report.md").read_text(), "make reports"
    assert html_path.read_text() == (run / "report.html").read_text(), "make reports"


def test_the_report_names_the_code_that_ran_and_the_uncommitted_diff(tmp_path):
    run = write_synthetic_run(tmp_path / "run")
    path = run / "record.json"
    record = json.loads(path.read_text())
    record["environment"].update(git_dirty=True, code_digest="c" * 64, git_diff_sha256="d" * 64)
    path.write_text(json.dumps(record))
    md = write_report(run, tmp_path / "out", resamples=200)[0].read_text()
    assert "(dirty)" in md and "c" * 64 in md and "d" * 64 in md
