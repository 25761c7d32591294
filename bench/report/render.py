"""Report rendering (step: the page's parts -> summary.md and an offline index.html in reading order: the overview,
contents, charts, folded detail tables, provenance; the runs' saved images copied beside them)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.core.numbers import human
from bench.core.private_files import READABLE, replace_file
from bench.report.overview import BEST_MARK, MISSED, REACHED
from bench.report.plots import Chart
from bench.report.sections import Section
from bench.report.tables import OK


def artifact_images(frame: pd.DataFrame, out_dir: Path) -> list[Chart]:
    """The sample grids / attention maps the runs saved (copied under out_dir when their sweep lies elsewhere),
    captioned with their run, and with how far the model got where none of its runs reached the target."""
    sources = list(dict.fromkeys(Path(s) for s in frame["source"]))
    images = []
    for index, source in enumerate(sources):
        found = sorted((source / "artifacts").glob("*/*.png"))
        if source.resolve() == out_dir.resolve():
            images += found
            continue
        prefix = Path("artifacts") if len(sources) == 1 else Path("artifacts") / f"{index}-{source.name}"
        for image in found:
            target = out_dir / prefix / image.parent.name / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            replace_file(target, image.read_bytes(), READABLE)
            images.append(target)
    missed = missed_targets(frame)
    captions = []
    for image in images:  # a run's folder is its run id, which starts with its model's name
        model = max((m for m in missed if image.parent.name.startswith(f"{m}-")), key=len, default=None)
        captions.append(f"{image.parent.name}: {image.name}" + (f" ({missed[model]})" if model else ""))
    return [Chart(image, caption) for image, caption in zip(images, captions)]


def missed_targets(frame: pd.DataFrame) -> dict[str, str]:
    """Models none of whose runs reached the target: `no gan run reached its target, fid ≤ 150: median 1,580`."""
    found = {}
    for model, rows in frame[frame["status"] == OK].groupby("model"):
        first = rows.iloc[0]
        if rows["reached_target"].eq("yes").any() or pd.isna(first["metric_target"]):
            continue
        relation = "≤" if first["metric_direction"] == "min" else "≥"
        found[model] = (f"no {model} run reached its target, {first['metric_name']} {relation} "
                        f"{human(first['metric_target'])}: median {human(rows['metric_value'].median())}")
    return found


def markdown_table(table: pd.DataFrame, index: bool = True) -> str:
    frame = table.reset_index() if index else table
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


MARKDOWN_ACTIVE = str.maketrans({c: "\\" + c for c in "\\`[]|"})  # code, links and images, cell borders


def markdown_cell(value: object) -> str:
    """A value (a model name, a run's message) as inert text in a table cell, as index.html shows it: on one line
    (a line break would end the table and start a heading), HTML escaped (no raw `<script>`), with the characters
    that make code, links or remote images, or end the cell, backslash-escaped."""
    return html.escape(" ".join(str(value).split()), quote=False).translate(MARKDOWN_ACTIVE)


def as_flat(table: pd.DataFrame) -> pd.DataFrame:
    """A pivot's index becomes its first column: one header row, no index-name row."""
    return table.reset_index() if table.index.name else table.reset_index(drop=True)


def mark_style(cell: str) -> str:
    """Colour for the overview's marks: reached green, missed red, the best config bold."""
    if cell.startswith(REACHED):
        return "color:#17692b"
    if cell.startswith(MISSED):
        return "color:#b3261e"
    return "font-weight:bold" if cell.startswith(BEST_MARK) else ""


def html_table(table: pd.DataFrame, number_: int, attributes: str = 'class="results"') -> str:
    """A table through pandas' Styler: escaped, no index column; numbers right-aligned, text left-aligned."""
    flat = as_flat(table).fillna("").astype(str)
    styler = flat.style.hide(axis="index").format(escape="html").set_uuid(f"t{number_}").map(mark_style)
    left = {column: [{"selector": "td", "props": "text-align: left"}]
            for column in flat.columns if not mostly_numbers(flat[column])}
    return styler.set_table_styles(left, overwrite=False).set_table_attributes(attributes).to_html()


def mostly_numbers(cells: pd.Series) -> bool:
    """Whether most non-empty cells of a column start with a number (those columns are right-aligned; a date or a
    version such as 2.14.1 is text)."""
    filled = [cell for cell in cells if cell]
    return bool(filled) and sum(map(starts_with_number, filled)) >= len(filled) / 2


def starts_with_number(cell: str) -> bool:
    try:
        float(cell.split(" ")[0].replace(",", "").removesuffix("x"))
    except ValueError:
        return False
    return True


@dataclass
class Page:
    """The report in reading order: the answer first, then the charts, the folded details, provenance last."""
    title: str
    summary: str  # runs, configs and statuses in one line
    overview: Section
    notes: list[str]  # what the profile does not aim at, shared devices: read with the overview
    charts: list[Chart]  # the first is the overview chart
    details: list[Section]
    images: list[Chart]  # what the runs saved (sample grids, attention maps)
    provenance: Section


def anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def write_markdown(path: Path, page: Page) -> None:
    lines = [f"# {page.title}", "", page.summary, ""]
    overview_title, overview_note, overview = page.overview
    lines += [f"## {overview_title}", "", overview_note, "", markdown_table(as_flat(overview), index=False), ""]
    lines += [f"> {note}\n" for note in page.notes]
    figures = [f"![{chart.caption}]({chart.path.relative_to(path.parent).as_posix()})\n\n*{chart.caption}*\n"
               for chart in page.charts]
    lines += figures[:1] + (["## Charts", "", *figures[1:]] if figures[1:] else [])
    lines += ["## Detail tables", ""]
    for section_title, note, table in page.details:
        lines += [f"### {section_title}", "", note or "", ""]
        if table is not None:
            lines += [markdown_table(as_flat(table), index=False), ""]
    if page.images:
        lines += ["## Sample grids and attention maps (by run)", ""]
        lines += [f"![{image.caption}]({image.path.relative_to(path.parent).as_posix()})" for image in page.images]
        lines.append("")
    provenance_title, note, table = page.provenance
    lines += [f"## {provenance_title}", "", note, "", markdown_table(as_flat(table), index=False), ""]
    replace_file(path, "\n".join(lines), READABLE)


STYLE = ("body{font-family:sans-serif;margin:.6em 1.2em;max-width:1360px}h1{font-size:1.4em;margin:.2em 0}"
         "h2{font-size:1.2em;margin:.8em 0 .3em}p{margin:.3em 0}"
         "table.results{border-collapse:collapse;font-size:13px;margin-bottom:.6em}"
         "table.results td,table.results th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
         "table.results td{max-width:40em}"
         # Cells wrap at spaces only where a table would not fit the page otherwise (wide pivots of many configs).
         "table.results th{background:#f0f0f0;text-align:center;max-width:9em}"
         ".note{color:#555;max-width:1100px;font-size:13px}"
         ".badge{background:#fff3cd;border:1px solid #e0b400;padding:.3em 1em;max-width:1100px;font-size:13px}"
         "details{margin:.4em 0}summary{cursor:pointer;font-weight:bold}nav li{margin:.2em 0}"
         "img{max-width:100%}figure{margin:1em 1em 1em 0;display:inline-table;vertical-align:top}"
         "figcaption{display:table-caption;caption-side:bottom;font-size:13px;color:#333;overflow-wrap:anywhere}")


def figure(source: str, caption: str) -> str:
    return (f"<figure><img src='{html.escape(source)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def contents(page: Page) -> str:
    """The table of contents: charts, each detail table, the runs' images, provenance."""
    details = ", ".join(f"<a href='#{anchor(title)}'>{html.escape(title)}</a>" for title, _, _ in page.details)
    items = ["<a href='#charts'>Charts</a>" if page.charts[1:] else "",
             f"<a href='#details'>Detail tables</a> (folded): {details}",
             "<a href='#images'>Sample grids and attention maps</a>" if page.images else "",
             "<a href='#provenance'>Provenance</a>"]
    return "<nav><h2>Contents</h2><ul>" + "".join(f"<li>{item}</li>" for item in items if item) + "</ul></nav>"


def write_html(path: Path, page: Page) -> None:
    title, note, overview = page.overview
    body = [f"<h1>{html.escape(page.title)}</h1><p class=note>{html.escape(page.summary)}</p>",
            f"<h2 id=overview>{html.escape(title)}</h2>", html_table(overview, 0, 'class="results overview"'),
            f"<p class=note>{html.escape(note)}</p>"]
    body += [f"<p class=badge>{html.escape(note)}</p>" for note in page.notes]
    relative = [(chart.path.relative_to(path.parent).as_posix(), chart.caption) for chart in page.charts]
    body += [figure(*relative[0])] if relative else []
    body.append(contents(page))
    if relative[1:]:
        body += ["<h2 id=charts>Charts</h2>", *[figure(*chart) for chart in relative[1:]]]
    body.append("<h2 id=details>Detail tables</h2>")
    for number_, (section_title, section_note, table) in enumerate(page.details, start=1):
        body.append(f"<details id='{anchor(section_title)}'><summary>{html.escape(section_title)}</summary>"
                    f"<p class=note>{html.escape(section_note or '')}</p>")
        body.append((html_table(table, number_) if table is not None else "") + "</details>")
    if page.images:
        body.append("<h2 id=images>Sample grids and attention maps (by run)</h2>")
        body += [figure(image.path.relative_to(path.parent).as_posix(), image.caption) for image in page.images]
    title, note, table = page.provenance
    body += [f"<h2 id=provenance>{html.escape(title)}</h2><p class=note>{html.escape(note)}</p>",
             html_table(table, len(page.details) + 1)]
    replace_file(path, f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(page.title)}</title>"
                 f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n", READABLE)
