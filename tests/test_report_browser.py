"""The report in a real browser (headless Chromium over its DevTools protocol): no
console errors, nothing wider than the page, every image loaded, Chinese text in the
Chinese edition; a screenshot of each section is written to ``artifacts/browser``
(or ``$SSC_ARTIFACTS``) for people to look at.  Skipped only where Chromium is not
installed (``.ci/run`` installs it)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from _browser import CHROMIUM, Browser
from _report_files import nested_survey
from sscoverage.cli import main

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
pytest.importorskip("websocket", reason="websocket-client is a test dependency")

ARTIFACTS = Path(os.environ.get("SSC_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts" / "browser"))

#: Measured in the page: elements wider than the page, images not loaded, the sections,
#: and how much of the text is Chinese.
CHECKS = """(() => {
  const page = document.documentElement.clientWidth;
  const wide = [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > page + 1 || e.getBoundingClientRect().left < -1)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);
  const text = document.body.innerText;
  return {
    page, scrollWidth: document.documentElement.scrollWidth, wide, broken,
    images: document.images.length,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    cjk: (text.match(/[\\u4e00-\\u9fff]/g) || []).length,
    lang: document.documentElement.lang,
  };
})()"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("browser")
    data, mapping, _ = nested_survey(folder)
    runs = {
        "bundled-en": [],
        "bundled-zh": ["--lang", "zh"],
        "nested-zh": ["--lang", "zh", "--data", str(data), "--mapping", str(mapping)],
    }
    pages = {}
    for name, extra in runs.items():
        pages[name] = folder / f"{name}.html"
        assert main(["report", "--out", str(pages[name]), "--no-progress", *extra]) == 0
    return pages


@pytest.fixture(scope="module")
def browser():
    with Browser(width=1100, height=900) as b:
        yield b


@pytest.mark.parametrize("name", ["bundled-en", "bundled-zh", "nested-zh"])
def test_report_renders_cleanly(reports, browser, name):
    browser.open(reports[name])
    found = browser.evaluate(CHECKS)
    assert browser.console_errors() == []
    assert found["scrollWidth"] <= found["page"], found["wide"][:10]
    assert found["wide"] == []
    assert found["images"] >= 5 and found["broken"] == []
    assert {"survey", "table1", "lapse", "reentry", "quality"} <= set(found["sections"])
    if name.endswith("zh"):
        assert found["lang"] == "zh-Hans" and found["cjk"] > 500
    else:
        assert found["lang"] == "en" and found["cjk"] == 0
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    browser.screenshot("header", folder / "00-header.png")
    for k, section in enumerate(found["sections"], start=1):
        shot = folder / f"{k:02d}-{section}.png"
        browser.screenshot(f"section#{section}", shot)
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 2000


def test_narrow_window_keeps_everything_on_the_page(reports):
    """A phone-width window: wide tables scroll inside their own box, the page does not."""
    with Browser(width=420, height=900) as narrow:
        narrow.open(reports["bundled-zh"])
        found = narrow.evaluate(CHECKS.replace("[...document.body.querySelectorAll('*')]",
                                               "[...document.body.querySelectorAll('body > *, section > *, figure, img')]"))
        assert narrow.console_errors() == []
        assert found["scrollWidth"] <= found["page"] and found["wide"] == []


def test_print_to_pdf_gives_a_document(reports, browser):
    """The print stylesheet: A4 pages without the contents list, every section there."""
    browser.open(reports["bundled-en"])
    browser.send("Emulation.setEmulatedMedia", media="print")
    hidden = browser.evaluate("getComputedStyle(document.querySelector('nav')).display")
    browser.send("Emulation.setEmulatedMedia", media="")
    pdf = base64.b64decode(browser.send("Page.printToPDF", preferCSSPageSize=True, printBackground=True)["data"])
    assert hidden == "none"
    assert pdf.startswith(b"%PDF")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 8 <= pages <= 60, pages
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "bundled-en.pdf").write_bytes(pdf)
