"""Report rendering (step: sections and images -> summary.md and an offline index.html; the runs' saved images
copied beside them)."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd

from bench.report.sections import Section


def artifact_images(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The sample grids / attention maps the runs saved, copied under out_dir when their sweep lies elsewhere."""
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
            shutil.copy2(image, target)
            images.append(target)
    return images


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


def html_table(table: pd.DataFrame, number_: int) -> str:
    """A table through pandas' Styler: escaped, no index column; numbers right-aligned, text left-aligned."""
    flat = as_flat(table).fillna("").astype(str)
    styler = flat.style.hide(axis="index").format(escape="html").set_uuid(f"t{number_}")
    left = {column: [{"selector": "td", "props": "text-align: left"}] for column in flat.columns
            if not mostly_numbers(flat[column])}
    return styler.set_table_styles(left, overwrite=False).set_table_attributes('class="results"').to_html()


def mostly_numbers(cells: pd.Series) -> bool:
    """Whether most non-empty cells of a column start with a number (those columns are right-aligned)."""
    filled = [cell for cell in cells if cell]
    return bool(filled) and sum(cell[0] in "+-0123456789" for cell in filled) >= len(filled) / 2


def write_markdown(path: Path, title: str, notes: list[str], sections: list[Section],
                   images: dict[str, list[Path]]) -> None:
    lines = [f"# {title}", "", *[f"> {note}\n" for note in notes]]
    for section_title, note, table in sections:
        lines += [f"## {section_title}", "", note or "", ""]
        if table is not None:
            lines += [markdown_table(as_flat(table), index=False), ""]
    for heading_, paths in images.items():
        if paths:
            lines += [f"## {heading_}", ""]
            lines += [f"![{image.stem}]({image.relative_to(path.parent).as_posix()})" for image in paths]
            lines.append("")
    path.write_text("\n".join(lines))


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1500px}"
         "table.results{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
         "table.results td,table.results th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
         "table.results th{background:#f0f0f0;text-align:center}.note{color:#555;max-width:1100px}"
         ".badge{background:#fff3cd;border:1px solid #e0b400;padding:.5em 1em;max-width:1100px}"
         "img{max-width:1450px}figure{margin:1em 1em 1em 0;display:inline-table;vertical-align:top}"
         "figcaption{display:table-caption;caption-side:bottom;font-size:12px;color:#555;overflow-wrap:anywhere}")


def write_html(path: Path, title: str, notes: list[str], sections: list[Section],
               images: dict[str, list[Path]]) -> None:
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p class=badge>{html.escape(note)}</p>" for note in notes]
    for number_, (section_title, note, table) in enumerate(sections):
        body.append(f"<h2>{html.escape(section_title)}</h2><p class=note>{html.escape(note or '')}</p>")
        if table is not None:
            body.append(html_table(table, number_))
    for heading_, paths in images.items():
        body.append(f"<h2>{html.escape(heading_)}</h2>" if paths else "")
        for image in paths:
            source = html.escape(image.relative_to(path.parent).as_posix())
            caption = html.escape(image.name if image.parent == path.parent else f"{image.parent.name}: {image.name}")
            body.append(f"<figure><img src='{source}' alt='{html.escape(image.stem)}'>"
                        f"<figcaption>{caption}</figcaption></figure>")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
