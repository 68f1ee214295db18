"""Open report.html in a real headless browser (Debian's chromium) and check every figure loaded.

`tests/reports/ensure_chromium.sh` installs chromium when missing; the Makefile runs it before the tests.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Records, after the page has loaded, how many <img> there are and how many decoded to real pixels, and
# whether a planted script ran. It goes into a copy of the report, never into the report itself.
CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre');
  out.id = 'img-check';
  out.textContent = JSON.stringify({
    n: imgs.length,
    ok: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    pwned: typeof window.__pwned,
    figures: document.querySelectorAll('figure img').length
  });
  document.body.appendChild(out);
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is missing: run tests/reports/ensure_chromium.sh (the Makefile does before tests)")
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


def test_report_renders_with_every_figure_loaded(report, tmp_path):
    seen = render(report.html, tmp_path)
    assert seen["figures"] == len([p for p in report.figures if p.suffix == ".png"]) == 8
    assert seen["ok"] == seen["n"] == seen["figures"]
    assert seen["pwned"] == "undefined"  # the script planted in an error message never ran


def test_the_check_sees_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><figure><img src='data:image/png;base64,AAAA'></figure>"
                    "<figure><img src='missing.png'></figure></body></html>")
    seen = render(page, tmp_path)
    assert seen["n"] == 2 and seen["ok"] == 0
