"""Names from the database reach every output as the text they are: arch, study, space and choice values that
hold HTML, Markdown, mathtext, line breaks, very long words and paths (see sweepdb.hostile_sweep).

A whole report of six studies: these run in `make test`; test_text.py checks the same rules in the fast loop.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
import yaml

from lightrecipe.reports import figures
from lightrecipe.reports.text import one_line
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe
from tests.reports import sweepdb
from tests.reports.commonmark import cells, literal

pytestmark = pytest.mark.slow

# Every element report.html may hold: anything else came from a name that was not escaped.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "p", "code", "b", "div",
             "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "figure", "img", "figcaption", "a", "span", "wbr", "br"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_holds_only_its_own_elements_and_shows_each_name_as_text(hostile):
    page = _Page()
    page.feed(hostile[1].html.read_text())
    assert {tag for tag, _ in page.tags} <= PAGE_TAGS
    for tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "a":
            assert re.fullmatch(r"[\w.-]+", attrs["href"]), attrs  # a file next to the page, never a URL
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,")
    text = "".join(page.text)
    assert sweepdb.HOSTILE_ARCH in text and sweepdb.HOSTILE_CHOICE in text
    assert sweepdb.HOSTILE_SPACE.replace("\r", "\n") in text  # HTML reads \r as a line break like \n


def test_markdown_escapes_every_name_so_it_renders_as_written(hostile):
    report = hostile[1]
    lines = report.markdown.read_text().splitlines()
    table = [cells(line) for line in lines if line.startswith("| ") and "---" not in line]
    header, rows = [literal(c) for c in table[0]], table[1:]
    shown = {literal(row[0]): row for row in rows}
    assert set(shown) == {one_line(a) for a in (sweepdb.HOSTILE_ARCH, *sweepdb.ESCAPING_ARCHS)}
    best_trial = literal(shown[sweepdb.HOSTILE_ARCH][header.index("best trial")])
    assert best_trial.startswith(one_line(sweepdb.HOSTILE_SPACE) + "/" + sweepdb.HOSTILE_ARCH + " #")
    notes = [line[2:] for line in lines if line.startswith("- ") and not line.startswith("- *")]
    assert [literal(n) for n in notes] == [one_line(n) for n in report.notes]


def test_best_recipe_files_stay_in_the_report_folder_one_per_arch(hostile):
    report = hostile[1]
    out = report.out.resolve()
    assert sorted(p.name for p in out.parent.iterdir()) == ["report", "sweep"]  # nothing written beside it
    files = report.best_recipes
    assert set(files) == set(sweepdb.ESCAPING_ARCHS)  # the hostile arch is no timm model: a note instead
    assert len({p.name for p in files.values()}) == len(files)  # "../../a b", "/a/b", "a_b": three files
    for arch, path in files.items():
        assert path.resolve().parent == out and path.name.startswith("best-") and path.suffix == ".yaml"
        text = path.read_text()
        assert set(yaml.safe_load(text)) == set(FIELD_NAMES), arch  # no name's line break made a key
        assert Recipe.from_file(path).arch == sweepdb.VALID_ARCH
        assert text.startswith(f"# Best recipe for {one_line(arch)}")  # ", the ResNet-50 settings" may follow
    assert any(n.startswith(f"best-{sweepdb.HOSTILE_ARCH}.yaml not written") for n in report.notes)


def test_every_figure_is_drawn_and_its_svg_holds_names_as_text(hostile):
    report = hostile[1]
    # every figure but warm-vs-cold, which needs a warm-started study (tests/reports/test_warm_figure.py)
    skipped = [n for n in report.notes if "skipped" in n]
    assert len(report.figures) == 2 * (len(figures.FIGURES) - 1), report.notes
    assert len(skipped) == 1 and skipped[0].startswith("figure 'warm' skipped"), skipped
    for svg in (p for p in report.figures if p.suffix == ".svg"):
        root = ET.parse(svg).getroot()
        for element in root.iter():
            assert not element.tag.endswith("script"), svg.name
            assert not [a for a in element.attrib if a.lower().startswith("on")], svg.name
    shown = "".join(ET.parse(report.out / "sensitivity.svg").getroot().itertext())
    assert "m$\\pwned{2}$" in shown  # an arch name in the legend, not typeset as mathtext
