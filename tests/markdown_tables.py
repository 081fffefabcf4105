"""The tables of a Markdown page, as the benchmark report and the README write them."""

from __future__ import annotations


def parse_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Per `## ` section, its table's rows as {column: cell} (the header row names the columns)."""
    tables: dict[str, list[dict[str, str]]] = {}
    section, header = "", None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section, header = line[3:], None
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                tables.setdefault(section, []).append(dict(zip(header, cells)))
    return tables
