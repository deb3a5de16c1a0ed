"""The HTML leaderboard page: structure, escaping and determinism in Python; sorting, escaping and
rendering in a real headless Chromium (skipped only when no browser can be started)."""

from __future__ import annotations

import base64
import html
import re
import shutil
from html.parser import HTMLParser

import pytest
from test_leaderboard import glue_model, main_table, make, only_section, qa_model

from benchmark import leaderboard
from benchmark.page import page_html

HOSTILE = "<script>window.__pwned=1</script>|a\\b\nsecond line <img src=x onerror=\"window.__pwned=2\">"
PROVENANCE = {"model_revision": "rev-1234", "seed": 7, "git_commit": "0123456789abcdef",
              "command": ["bench", "run", "--model", "bert base"],
              "hardware": {"device": "cpu", "cpu": "AMD EPYC", "cpu_count": 2, "cpu_isa": "AVX-512 VNNI"}}


class Tables(HTMLParser):
    """Tables as lists of rows of cells: (text, attrs); the summary text stands for a model cell."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[tuple[str, dict]]]] = []
        self.scripts = self.images = 0
        self.headings: list[str] = []
        self._cell: list | None = None
        self._skip = 0
        self._h3: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        self.images += tag == "img"
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ["", dict(attrs)]
            self.tables[-1][-1].append(self._cell)
        elif tag == "ul" and self._cell is not None:
            self._skip += 1                           # the expanded provenance is not the cell's text
        elif tag == "h3":
            self._h3 = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "ul" and self._skip:
            self._skip -= 1
        elif tag == "h3" and self._h3 is not None:
            self.headings.append("".join(self._h3))
            self._h3 = None

    def handle_data(self, data):
        if self._cell is not None and not self._skip:
            self._cell[0] += data
        if self._h3 is not None:
            self._h3.append(data)


def mixed() -> list:
    """Real GLUE for three models (one missing SST-2), a sample-suite and a random-weights section, and QA."""
    results = glue_model("bert") + glue_model("distilbert", params=66_000_000, throughput=400.0)
    results += [r for r in glue_model("bilstm", params=5_000_000, throughput=2000.0) if r.column != "SST-2"]
    results[0].provenance = dict(PROVENANCE)
    results += glue_model("bert", source="sample", location="builtin")
    results += glue_model("bert", weights="random")
    return results + qa_model("t5") + qa_model("bert-qa", throughput=90.0)


def sections_of(results) -> list:
    return [s for suite, rs in leaderboard._by_suite(results).items() for s in leaderboard.build_sections(suite, rs)]


# ---------------------------------------------------------------------------------------
# pure Python
def test_one_table_per_section_with_markdown_headers_and_numbers():
    results = mixed()
    parsed = Tables(page_html(results))
    sections = sections_of(results)
    assert len(parsed.tables) == len(sections) == 4       # glue: real, sample, random; qa: real
    for suite in ("glue", "qa"):
        markdown = leaderboard.suite_markdown(suite, [r for r in results if r.suite == suite])
        for section in leaderboard.build_sections(suite, [r for r in results if r.suite == suite]):
            heading = leaderboard.heading_text(leaderboard.suite_title(suite), section.key)
            table = parsed.tables[parsed.headings.index(heading)]
            headers, md_rows = main_table(only_section(markdown, leaderboard._heading(
                leaderboard.suite_title(suite), section.key)))
            assert [text for text, _ in table[0]] == headers == leaderboard._headers(suite, section.columns)
            assert len(table) - 1 == len(section.rows)
            # every number on the page is the markdown's number (the markdown escapes, the page does not)
            assert [[text for text, _ in row] for row in table[1:]] == [list(r.values()) for r in md_rows]


def test_banners_and_notes():
    dup = [make("SST-2", model="dup", n=50), make("SST-2", model="dup", n=500)]
    text = page_html(mixed() + dup)
    assert text.count(html.escape(leaderboard.SAMPLE_BANNER)) == 1
    assert text.count(html.escape(leaderboard.RANDOM_BANNER)) == 1
    assert "<strong>Synthetic data.</strong>" in text and "<strong>Random weights.</strong>" in text
    assert "<strong>GLUE avg</strong>: mean over tasks" in text
    assert "2 results for the same column; kept the one on n=500 examples" in text


def test_tooltip_and_expansion_carry_ci_and_provenance():
    parsed = Tables(page_html(mixed()))
    bert = next(row for row in parsed.tables[0][1:] if row[0][0] == "bert")
    title = bert[3][1]["title"]                        # SST-2
    for part in ("SST-2 acc: 90.0, 95% CI [89.0, 91.0]", "n = 100", "data fingerprint: sst2SST-2100",
                 "task version: 1", "data: local ../shared/data", "model revision: rev-1234", "seed: 7",
                 "git commit: 0123456789abcdef", "command: bench run --model 'bert base'",
                 "hardware: AMD EPYC, 2 cores, AVX-512 VNNI"):
        assert part in title.split("\n")
    assert bert[3][1]["data-sort"] == "90.0" and bert[0][1]["data-sort"] == "bert"
    text = page_html(mixed())
    assert "<details><summary>bert</summary><ul><li><strong>SST-2</strong>" in text
    assert "command: bench run --model &#x27;bert base&#x27;; hardware: AMD EPYC, 2 cores, AVX-512 VNNI</li>" in text


def test_hardware_line_names_the_gpu_and_skips_what_is_unknown():
    from benchmark.page import hardware_text

    assert hardware_text({"device": "cuda", "gpu": "NVIDIA H200", "cpu": "Intel Xeon", "cpu_count": 16}) == \
        "NVIDIA H200, Intel Xeon, 16 cores"
    assert hardware_text({"device": "cpu", "cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2}) == \
        "Intel(R) Xeon(R) Processor, 2 cores"
    assert hardware_text(None) == hardware_text("cpu") == ""


def test_dash_cells_sort_last_and_are_not_zero():
    parsed = Tables(page_html(mixed()))
    bilstm = next(row for row in parsed.tables[0][1:] if row[0][0] == "bilstm")
    assert bilstm[3][0] == leaderboard.DASH and bilstm[3][1]["data-sort"] == "" and bilstm[3][1]["title"] == "not run"
    assert bilstm[8][0] == leaderboard.DASH and bilstm[8][1]["data-sort"] == ""       # no GLUE avg


def test_hostile_values_are_only_ever_text():
    results = glue_model() + glue_model(HOSTILE, mode="<b>m</b>")
    results[-4].note = "</td></tr></table><script>window.__pwned=3</script>"     # the hostile SST-2 result
    results[-4].provenance = {"command": "x\" onmouseover=\"window.__pwned=4"}
    text = page_html(results)
    assert "<script>window" not in text and "<img" not in text and "<b>" not in text
    assert '" onmouseover' not in text
    parsed = Tables(text)
    assert parsed.scripts == 1 and parsed.images == 0 and len(parsed.tables) == 1
    rows = parsed.tables[0][1:]
    assert len(rows) == 2 and all(len(row) == len(parsed.tables[0][0]) for row in rows)
    evil = next(row for row in rows if row[0][0] != "bert")
    assert evil[0][0] == HOSTILE and evil[0][1]["data-sort"] == HOSTILE and evil[1][0] == "<b>m</b>"
    assert "note: </td></tr></table><script>window.__pwned=3</script>" in evil[3][1]["title"]


def test_deterministic_bytes():
    results = mixed()
    first = page_html(results, plots={"glue": b"\x89PNG fake"})
    assert first == page_html(list(reversed(results)), plots={"glue": b"\x89PNG fake"})
    assert first == page_html(mixed(), plots={"glue": b"\x89PNG fake"})


def test_plot_embedded_as_data_uri_under_its_suite():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    text = page_html(mixed(), plots={"glue": png, "superglue": b"ignored: no results"})
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert text.count("data:image/png;base64,") == 1
    glue, qa = text.index('<section id="glue">'), text.index('<section id="qa">')
    assert glue < text.index(uri) < qa
    assert "data:image" not in page_html(mixed())


def test_self_contained():
    text = page_html(mixed(), plots={"qa": b"\x89PNG"}, title="A & B")
    assert "<title>A &amp; B</title>" in text
    links = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?([^"'\s>)]*)""", text, flags=re.I)
    assert links == ["data:image/png;base64,iVBORw=="]                # nothing to fetch: opens from the file system
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


# ---------------------------------------------------------------------------------------
# a real browser
@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        pytest.skip(f"playwright is not importable ({exc}); pip install playwright")
    executable = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Error as exc:
            pytest.skip(f"no browser could be started ({executable}): {exc.message.splitlines()[0]}; "
                        "apt-get install chromium")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.errors = errors
    yield tab
    context.close()


def open_page(page, tmp_path, results, fragment: str = "", name: str = "index.html", **kw):
    path = tmp_path / name
    path.write_text(page_html(results, **kw), encoding="utf-8")
    page.goto(path.as_uri() + fragment)
    return path


def column(page, table: int, col: int, attr: str | None = None) -> list[str]:
    cells = page.locator(f"table.lb >> nth={table}").locator(f"tbody tr td:nth-child({col + 1})")
    return cells.evaluate_all(f"cs => cs.map(c => {'c.dataset.sort' if attr else 'c.textContent'})")


def models(page, table: int = 0) -> list[str]:
    return column(page, table, 0, attr="sort")


def test_browser_renders_rows_and_headers(page, tmp_path):
    open_page(page, tmp_path, mixed())
    assert page.locator("table.lb").count() == 4
    headers = page.locator("table.lb >> nth=0").locator("thead th").all_inner_texts()
    assert headers == leaderboard._headers("glue", sections_of(mixed())[0].columns)
    assert models(page) == ["bert", "distilbert", "bilstm"]       # as built: by average, then model; "—" last
    assert column(page, 0, 3) == ["90.0", "90.0", leaderboard.DASH]
    assert page.evaluate("getComputedStyle(document.querySelector('td.num')).textAlign") == "right"
    assert page.errors == []                                     # the CSP let the inline script and style run


def test_browser_click_sorts_both_directions_dash_last(page, tmp_path):
    open_page(page, tmp_path, mixed())
    header = page.locator("table.lb >> nth=0").locator("thead th button", has_text="Throughput")
    header.click()
    assert models(page) == ["bert", "distilbert", "bilstm"]      # 200, 400, 2000 ex/s
    assert page.locator("table.lb >> nth=0").locator("thead th >> nth=10").get_attribute("aria-sort") == "ascending"
    header.click()
    assert models(page) == ["bilstm", "distilbert", "bert"]
    avg = page.locator("table.lb >> nth=0").locator("thead th button", has_text="GLUE avg")
    avg.click()
    assert models(page)[-1] == "bilstm"                           # no average: last ascending...
    avg.click()
    assert models(page)[-1] == "bilstm"                           # ...and descending
    model = page.locator("table.lb >> nth=0").locator("thead th button", has_text="Model")
    model.click()
    assert models(page) == ["bert", "bilstm", "distilbert"]
    model.click()
    assert models(page) == ["distilbert", "bilstm", "bert"]
    assert models(page, 1) == ["bert"] and page.errors == []     # other tables untouched


def test_browser_sort_fragment(page, tmp_path):
    open_page(page, tmp_path, mixed(), fragment="#sort=3:9:desc")   # QA table, throughput
    assert models(page, 3) == ["t5", "bert-qa"]
    open_page(page, tmp_path, mixed(), fragment="#sort=0:2:asc", name="b.html")  # GLUE params: 5M, 66M, 110M
    assert models(page) == ["bilstm", "distilbert", "bert"]
    assert page.locator("table.lb >> nth=0").locator("thead th >> nth=2").get_attribute("aria-sort") == "ascending"
    assert page.errors == []


def test_browser_hostile_name_is_text_and_never_runs(page, tmp_path):
    results = glue_model() + glue_model(HOSTILE, throughput=1.0)
    results[-4].provenance = {"command": "x\" onmouseover=\"window.__pwned=4"}
    open_page(page, tmp_path, results)
    row = page.locator("table.lb tbody tr >> nth=0")             # same average: '<' sorts before 'b'
    assert row.locator("summary").text_content() == HOSTILE
    assert row.locator("td >> nth=0").get_attribute("data-sort") == HOSTILE
    assert page.locator("table.lb tbody tr").count() == 2 and page.locator("table.lb tbody img").count() == 0
    assert all(row.locator("td").count() == 11 for row in page.locator("table.lb tbody tr").all())
    row.locator("td >> nth=3").hover()
    row.locator("summary").click()                               # expand the provenance
    assert row.locator("li").first.is_visible()
    assert 'command: x" onmouseover="window.__pwned=4' in row.locator("li").first.text_content()
    assert 'command: x" onmouseover="window.__pwned=4' in row.locator("td >> nth=3").get_attribute("title")
    model = page.locator("thead th button", has_text="Model")
    model.click()
    assert models(page) == [HOSTILE, "bert"]
    model.click()
    assert models(page) == ["bert", HOSTILE]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.scripts.length") == 1


def test_browser_screenshot_of_a_realistic_page(page, tmp_path):
    pytest.importorskip("matplotlib")
    results = mixed() + glue_model("roberta", params=125_000_000, throughput=150.0)
    for r in results[-4:]:
        r.metrics = {k: v + 3.0 for k, v in r.metrics.items()}
    plots = {p.stem: p.read_bytes() for p in leaderboard.plot(results, tmp_path / "plots")}
    assert set(plots) == {"glue", "qa"}
    open_page(page, tmp_path, results, plots=plots)
    page.locator("table.lb >> nth=0").locator("thead th button", has_text="GLUE avg").click()
    page.locator("table.lb >> nth=0").locator("summary", has_text="roberta").click()
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert page.errors == []
