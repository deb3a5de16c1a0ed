"""Results -> one self-contained, sortable HTML leaderboard page (opens from the file system).

The numbers come from the same table model as the markdown (`leaderboard.build_sections`) and are
formatted by the same functions, so the page and `leaderboards/*.md` never disagree. Every value is
passed through `_text` (html.escape with quote=True); only fixed markup of this module is raw. The
inline script and style are pinned by hash in a Content-Security-Policy, so even an escaping bug
could not run an injected script, and the page can reach no network. Same results, same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shlex
from typing import Any, Mapping, Sequence

from . import leaderboard as lb
from .results import Result, is_number, seed_summary
from .tasks import TaskSpec

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1f2328}
table.lb{border-collapse:collapse;margin:.5em 0}
.lb th,.lb td{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top}
.lb td.num{text-align:right;font-variant-numeric:tabular-nums}
.lb tbody tr:nth-child(even){background:#f6f8fa}
.lb th{white-space:nowrap}
.lb th button{all:unset;cursor:pointer;font-weight:600}
.lb th[aria-sort=ascending] button::after{content:" \\25B2"}
.lb th[aria-sort=descending] button::after{content:" \\25BC"}
.lb td[title]{cursor:help}
.lb summary{cursor:pointer;white-space:pre-wrap}
.lb details ul{margin:.3em 0;padding-left:1.2em;font-size:12px;max-width:40em}
.warn{background:#fff8c5;border-left:4px solid #d4a72c;padding:4px 8px}
img.plot{max-width:100%;border:1px solid #d0d7de}
.notes{font-size:13px;color:#57606a}
"""

# Sort a table by column `col`; "—" (empty data-sort) always last; ties keep the page's original order.
_SCRIPT = """
function sortTable(table, col, dir) {
  const ths = table.tHead.rows[0].cells, numeric = ths[col].dataset.type === "num", sign = dir === "asc" ? 1 : -1;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows, (row) => ({row, i: +row.dataset.order, key: row.cells[col].dataset.sort}));
  rows.sort((a, b) => {
    const ea = a.key === "", eb = b.key === "";
    if (ea || eb) return ea === eb ? a.i - b.i : (ea ? 1 : -1);
    const d = numeric ? Number(a.key) - Number(b.key) : (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    return d ? sign * d : a.i - b.i;
  });
  rows.forEach((r) => body.appendChild(r.row));
  Array.from(ths).forEach((th, i) => i === col
    ? th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending") : th.removeAttribute("aria-sort"));
}
const tables = document.querySelectorAll("table.lb");
tables.forEach((table) => Array.from(table.tHead.rows[0].cells).forEach((th, col) =>
  th.querySelector("button").addEventListener("click", () =>
    sortTable(table, col, th.getAttribute("aria-sort") === "ascending" ? "desc" : "asc"))));
const m = /^#sort=(\\d+):(\\d+):(asc|desc)$/.exec(location.hash);  // deep link: #sort=<table>:<column>:<dir>
if (m && tables[+m[1]] && tables[+m[1]].tHead.rows[0].cells[+m[2]]) sortTable(tables[+m[1]], +m[2], m[3]);
"""


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


_CSP = (f"default-src 'none'; img-src data:; style-src {_sha(_STYLE)}; script-src {_sha(_SCRIPT)}; "
        "base-uri 'none'; form-action 'none'")
_CONTROL = str.maketrans({c: " " for c in map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])})


def _text(value: Any) -> str:
    """Escaped text for an element or a quoted attribute; newlines kept (a browser would turn \\r into \\n)."""
    s = "" if value is None else str(value)
    return html.escape(s.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL), quote=True)


def _key(value: Any) -> str:
    """The data-sort value of a numeric cell: repr of a finite number, else '' (sorted last)."""
    return repr(float(value)) if is_number(value) else ""


def _td(shown: str, sort: str, *, num: bool = True, title: str | None = None) -> str:
    attrs = ' class="num"' if num else ""
    if title is not None:
        attrs += f' title="{_text(title)}"'
    return f'<td data-sort="{_text(sort)}"{attrs}>{_text(shown)}</td>'


def _common_lines(r: Result) -> list[str]:
    """Where a result came from: what a reader needs to reproduce or distrust it."""
    lines = [f"n = {r.data.num_examples}", f"data fingerprint: {r.data.fingerprint[:12]}",
             f"task version: {r.task_version}", f"data: {r.data.source} {r.data.location}"]
    prov = r.provenance or {}
    for label, name in (("model revision", "model_revision"), ("seed", "seed"), ("git commit", "git_commit"),
                        ("command", "command")):
        value = prov.get(name)
        if isinstance(value, (list, tuple)):
            value = shlex.join(str(v) for v in value)
        if name == "seed" and (summary := seed_summary(r)) and len(summary.seeds) > 1:
            label, value = "seeds", ", ".join(map(str, summary.seeds))  # and the lowest seed's command
        if value not in (None, ""):
            lines.append(f"{label}: {value}")
    if machine := hardware_text(prov.get("hardware")):
        lines.append(f"hardware: {machine}")
    if r.status != "ok":
        lines.append(f"status: {r.status}")
    if r.note:
        lines.append(f"note: {r.note}")
    return lines


def hardware_text(hardware: object) -> str:
    """One line for the machine behind a row's latency and throughput: they mean little without it."""
    if not isinstance(hardware, dict):
        return ""
    cores = hardware.get("cpu_count")
    parts = [hardware.get("gpu"), hardware.get("cpu"), f"{cores} cores" if cores else None, hardware.get("cpu_isa")]
    return ", ".join(str(part) for part in parts if part)


def _metric_line(column: str, r: Result, metric: str) -> str:
    seeds = lb.seeds_text(r, metric)
    ci = f", 95% CI {lb._ci_text(r.ci95.get(metric))}" if metric in r.ci95 or not seeds else ""
    return f"{column} {lb.metric_label(metric)}".strip() + f": {lb.cell_text(r, metric)}" + ci + \
        (f" ({seeds})" if seeds else "")


def _row(section: lb.Section, row: lb.Row, order: int) -> str:
    details = []
    for c in section.columns:
        if (r := row.cells.get(c.column)) is not None:
            lines = [_metric_line(c.column, r, m) for m in c.metrics] + _common_lines(r)
            details.append(f"<li><strong>{_text(c.column)}</strong>: {_text('; '.join(lines))}</li>")
    model = (f'<td data-sort="{_text(row.model)}"><details><summary>{_text(row.model)}</summary>'
             f'<ul>{"".join(details)}</ul></details></td>')
    counts = [r.efficiency.num_parameters for r in row.cells.values() if r.efficiency.num_parameters is not None]
    cells = [model, _td(row.mode or lb.DASH, row.mode, num=False), _td(row.params, _key(min(counts, default=None)))]
    for c in section.columns:
        r = row.cells.get(c.column)
        for m in c.metrics:
            value = lb._ok_metric(r, m)
            title = ("not run" if r is None else "\n".join([_metric_line(c.column, r, m)] + _common_lines(r)))
            cells.append(_td(lb.cell_text(r, m), _key(value), title=title))
    cells += [_td(lb._number(row.average), _key(row.average)), _td(lb._measure(row.latency_p50), _key(row.latency_p50)),
              _td(lb._measure(row.throughput), _key(row.throughput))]
    return f'<tr data-order="{order}">{"".join(cells)}</tr>'


def _bold(markdown: str) -> str:
    """Fixed text of leaderboard.py as HTML: only its **bold** becomes markup (after escaping)."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _text(markdown))


def _notes(suite: str, section: lb.Section, tasks: Mapping[str, TaskSpec]) -> list[str]:
    """The markdown notes as HTML."""
    return [_bold(n) for n in lb.fixed_notes(suite, section, tasks)] + [_text(n) for n in section.notes]


def _section(suite: str, section: lb.Section, tasks: Mapping[str, TaskSpec], index: int) -> list[str]:
    out = [f"<h3>{_text(lb.heading_text(lb.suite_title(suite), section.key))}</h3>"]
    out += [f'<p class="warn">{_bold(b)}</p>' for b in lb.banners(section.key)]
    if section.locations:
        out.append("<p>Datasets: " + ", ".join(f"<code>{_text(loc)}</code>" for loc in section.locations) + "</p>")
    headers = lb._headers(suite, section.columns)
    ths = "".join(f'<th scope="col" data-type="{"text" if i < 2 else "num"}"><button type="button">{_text(h)}'
                  "</button></th>" for i, h in enumerate(headers))
    rows = "".join(_row(section, row, i) for i, row in enumerate(section.rows))
    out.append(f'<table class="lb" id="t{index}"><thead><tr>{ths}</tr></thead><tbody>{rows}</tbody></table>')
    out.append('<ol class="notes">' + "".join(f"<li>{n}</li>" for n in _notes(suite, section, tasks)) + "</ol>")
    return out


def page_html(results: Sequence[Result], tasks: Mapping[str, TaskSpec] | None = None,
              plots: Mapping[str, bytes] | None = None, title: str = "Leaderboards") -> str:
    """The whole page: per suite its plot (PNG bytes as a data URI), then one sortable table per section.

    Hover a metric cell for its 95% CI and provenance; open a model's row for all of them.
    """
    tasks, plots = tasks or {}, plots or {}
    results = [r for r in results if isinstance(r, Result)]
    body, index = [f"<h1>{_text(title)}</h1>",
                   "<p>Click a column header to sort (again to reverse; \u2014 is always last). Hover a score for "
                   "its 95% CI and provenance; click a model name for all of its results.</p>"], 0
    for suite, suite_results in lb._by_suite(results).items():
        name = lb.suite_title(suite)
        body.append(f'<section id="{_text(suite)}"><h2>{_text(name)} leaderboard</h2>')
        body.append(f"<p>From {len(suite_results)} result(s). {lb.DASH} marks an unsupported or missing result, "
                    "never a zero.</p>")
        if plots.get(suite):
            data = base64.b64encode(plots[suite]).decode("ascii")
            body.append(f'<p><img class="plot" alt="{_text(name)}: score vs throughput" '
                        f'src="data:image/png;base64,{data}"></p>')
        for section in lb.build_sections(suite, suite_results, tasks):
            body += _section(suite, section, tasks, index)
            index += 1
        body.append("</section>")
    head = (f'<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_text(title)}</title>'
            f"<style>{_STYLE}</style>")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>\n' + "\n".join(body)
            + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n")
