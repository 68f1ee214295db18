"""Open report.html in a real headless browser (Debian's chromium) and check every figure loaded.

`tests/ensure_system_packages.sh` installs chromium when missing; the Makefile runs it before the tests.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lightrecipe.reports import figures

# Records, after the page has loaded, how many <img> there are and how many decoded to real pixels,
# whether a planted script ran, the page's width against the window's, and every block that reaches past
# the page's content box. It goes into a copy of the report, never into the report itself.
CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var main = document.querySelector('main');
  var right = main ? main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight)
                   : window.innerWidth;
  var blocks = Array.prototype.slice.call(document.querySelectorAll('table, figure, img, h1, h2, h3, p, div, ul'));
  var out = document.createElement('pre');
  out.id = 'img-check';
  out.textContent = JSON.stringify({
    n: imgs.length,
    ok: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    pwned: typeof window.__pwned,
    figures: document.querySelectorAll('figure img').length,
    window: window.innerWidth,
    page: document.documentElement.scrollWidth,
    wide: blocks.filter(function (b) { return b.getBoundingClientRect().right > right + 1; })
                .map(function (b) { return b.tagName + ': ' + b.textContent.slice(0, 80); })
  });
  document.body.appendChild(out);
});
</script>"""
PAGE_WIDTH = 1280  # px: a laptop's browser window, the width the report is laid out for
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--window-size={PAGE_WIDTH},900", "--hide-scrollbars"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is missing: run tests/ensure_system_packages.sh (the Makefile does before tests)")
    return path


def render(page: Path, tmp_path: Path) -> dict:
    """Load `page` with the CHECK script in chromium and return what the script recorded."""
    probe = page.with_name(page.stem + ".check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    match = re.search(r'<pre id="img-check">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the page did not finish loading in chromium: {result.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


@pytest.mark.slow
def test_report_renders_with_every_figure_loaded(report, tmp_path):
    seen = render(report.html, tmp_path)
    drawn = len(figures.FIGURES) - 1  # every figure but warm-vs-cold: the planted sweep has no warm-started study
    assert seen["figures"] == len([p for p in report.figures if p.suffix == ".png"]) == drawn
    assert seen["ok"] == seen["n"] == seen["figures"]
    assert seen["pwned"] == "undefined"  # the script planted in an error message never ran


@pytest.mark.slow
def test_the_check_sees_a_broken_image_and_a_wide_table(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><main><figure><img src='data:image/png;base64,AAAA'></figure>"
                    "<figure><img src='missing.png'></figure><table><tr>" + "<td>column_name</td>" * 150
                    + "</tr></table></main></body></html>")
    seen = render(page, tmp_path)
    assert seen["n"] == 2 and seen["ok"] == 0
    assert seen["page"] > PAGE_WIDTH and [w for w in seen["wide"] if w.startswith("TABLE")]


@pytest.mark.slow
def test_no_table_or_figure_is_wider_than_a_1280_px_page(one_arch_folder, hostile, tmp_path):
    from lightrecipe.reports.build import build_report

    one_arch = build_report(str(one_arch_folder), tmp_path / "one-arch")  # eleven knobs, as in paper-efficient
    for name, report in (("one arch", one_arch), ("hostile names", hostile[1])):
        seen = render(report.html, tmp_path)
        assert seen["window"] == PAGE_WIDTH, name
        assert seen["wide"] == [] and seen["page"] <= PAGE_WIDTH, (name, seen["page"], seen["wide"])
        assert seen["pwned"] == "undefined", name
