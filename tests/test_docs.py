"""The documentation holds together: every relative link and anchor of README.md, SECURITY.md
and docs/*.md leads somewhere (anchors by GitHub's rules), nothing links outside the project,
`pidone --help` fits one screen and lists exactly the flags of the README's table, the
README's costs are the last benchmark report's, and docs/metrics.md says what every metric of
SPEC.md is for."""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import PIDONE, ROOT
from markdown_tables import parse_tables

PAGES = sorted([ROOT / "README.md", ROOT / "SECURITY.md", *(ROOT / "docs").glob("*.md")])
SCREEN_LINES = 40
SCREEN_COLUMNS = 80
COSTS = {
    # the README's row -> the (section, metric) of docs/benchmarks.md each of its figures shows
    "memory (RSS; with HTTP, after a scrape)": [("Memory", "RSS (MiB)")],
    "exec of the init → exec of its child":
        [("Start-up", "exec of the init → exec of the child (ms)")],
    "`INIT -- /bin/true`, whole": [("Start-up", "whole process, `INIT -- /bin/true` (ms)")],
    "size on disk / as a tar.gz layer": [("Size", "on disk (MiB)"), ("Size", "tar.gz (MiB)")],
}
COST_COLUMNS = {"tini": "tini", "pidone": "pidone", "pidone, HTTP on": "pidone+http",
                "pidone bundle (HTTP on)": "pidone bundle"}
"""The README's columns -> the report's."""
IN_REPORT_UNITS = {"KiB": 1 / 1024, "MiB": 1.0, "ms": 1.0}

FENCE = re.compile(r"^ *```.*?^ *```", re.S | re.M)
CODE_SPAN = re.compile(r"(`+).*?\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^\s>]*)>")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The text as rendered prose: no fenced blocks, no code spans (a link in code is none)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    """Every link target of a page: inline links and images, reference definitions, autolinks."""
    body = prose(text)
    return [*INLINE_LINK.findall(body), *REFERENCE_DEFINITION.findall(body),
            *AUTOLINK.findall(body)]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text without markup, lower case, punctuation gone
    (letters, digits, `_`, `-` and spaces stay), spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = "".join(c for c in text if c.isalnum() or c in "_- ")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text())):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def broken(page: Path, target: str) -> str | None:
    """Why `target`, a link on `page`, leads nowhere; None when it leads somewhere."""
    if SCHEME.match(target) or target.startswith("//"):
        return "links outside the project"
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    if not linked.is_relative_to(ROOT):
        return "leaves the repository"
    if not linked.exists():
        return "no such file"
    if anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
        return f"no heading #{anchor} in {linked.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("heading, anchor", [
    ("What `make test` proves, and what only a cluster shows",
     "what-make-test-proves-and-what-only-a-cluster-shows"),
    ("The demo, here (no Docker needed)", "the-demo-here-no-docker-needed"),
    ("This repository's image", "this-repositorys-image"),
    ("`pidone health`", "pidone-health"),
    ("Signals over the API", "signals-over-the-api"),
    ("A pod with `shareProcessNamespace: true`", "a-pod-with-shareprocessnamespace-true"),
    ("Auth: who may call what", "auth-who-may-call-what"),
    ("[SPEC](SPEC.md) and more_things", "spec-and-more_things"),
])
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def test_the_link_checker_sees_every_kind_of_link(tmp_path: Path) -> None:
    text = ("[a](a.md) ![b](b.png) [c](#c) `[no](code.md)`\n\n[d]: d.md\n\n<https://e.example>\n"
            "```\n[no](fenced.md)\n```\n")
    assert sorted(link_targets(text)) == ["#c", "a.md", "b.png", "d.md", "https://e.example"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_leads_to_a_file_and_heading_of_the_project(page: Path) -> None:
    faults = [f"{target}: {why}" for target in link_targets(page.read_text())
              if (why := broken(page, target))]
    assert not faults, "\n".join(faults)


def test_every_page_of_docs_is_linked_from_the_readme_or_another_page() -> None:
    linked = {(page.parent / target.partition("#")[0]).resolve()
              for page in PAGES for target in link_targets(page.read_text())}
    orphans = [page.name for page in PAGES if page.name != "README.md" and page not in linked]
    assert not orphans


def flags_in(text: str) -> set[str]:
    """Every -x and --long-flag named in `text`."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", text))


def readme_flag_table() -> str:
    """The first column of the README's "Flags" table."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Flags\n"):]
    rows = re.findall(r"^\| *(`[^|]*`) *\|", section.split("\n## ")[1], re.M)
    assert rows, "no flag table under ## Flags in README.md"
    return "\n".join(rows)


def help_text() -> str:
    done = subprocess.run([*PIDONE, "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_fits_one_screen() -> None:
    lines = help_text().splitlines()
    assert len(lines) <= SCREEN_LINES
    assert [line for line in lines if len(line) > SCREEN_COLUMNS] == []


def test_help_lists_exactly_the_flags_of_the_readmes_table() -> None:
    options = help_text().split("\noptions:\n", 1)[1]
    first_column = re.findall(r"^ +(-\S.*?)(?: {2,}|$)", options, re.M)
    assert flags_in("\n".join(first_column)) == flags_in(readme_flag_table())


def test_the_readmes_costs_are_the_last_benchmark_reports() -> None:
    """Each figure of the README's cost table is the report's median, rounded as shown."""
    readme = parse_tables((ROOT / "README.md").read_text())["What it costs"]
    report = parse_tables((ROOT / "docs" / "benchmarks.md").read_text())
    assert sorted(row[""] for row in readme) == sorted(COSTS)
    for row in readme:
        for column, init in COST_COLUMNS.items():
            shown = re.findall(r"([\d.]+) (KiB|MiB|ms)", row[column].partition("(")[0])
            if not shown:
                continue  # "+ the image's Python": no figure of its own
            assert len(shown) == len(COSTS[row[""]]), row[column]
            for (figure, unit), (section, metric) in zip(shown, COSTS[row[""]]):
                (measured,) = [float(line[init].split()[0]) for line in report[section]
                               if line["metric"] == metric]
                decimals = len(figure.partition(".")[2])
                scale = IN_REPORT_UNITS[unit]
                rounding = 0.5 * 10 ** -decimals * scale + 1e-9
                assert abs(float(figure) * scale - measured) <= rounding, \
                    f"{row['']}, {column}: README {figure} {unit}, report {measured}"


@pytest.mark.parametrize("line, row", [
    ("- **memory**", "memory (RSS; with HTTP, after a scrape)"),
    ("- **start-up**", "`INIT -- /bin/true`, whole"),
])
def test_the_first_screen_repeats_the_cost_table(line: str, row: str) -> None:
    """The first screen's cost lines: pidone's, pidone's with HTTP and tini's figures of the
    table below, in that order."""
    readme = (ROOT / "README.md").read_text()
    first_screen = readme.splitlines()[:SCREEN_LINES]
    (said,) = [text for text in first_screen if text.startswith(line)]
    (table_row,) = [r for r in parse_tables(readme)["What it costs"] if r[""] == row]
    figures = [table_row[column].split(" (")[0] for column in ("pidone", "pidone, HTTP on", "tini")]
    assert re.findall(r"[\d.]+ (?:MiB|ms)", said.split(":", 1)[1]) == figures, said


def test_metrics_page_names_every_metric_of_the_spec() -> None:
    spec = (ROOT / "docs" / "SPEC.md").read_text()
    table = spec[spec.index("\n## Metrics\n"):].split("\n## ")[1]
    names = set(re.findall(r"`(pidone_[a-z_]+)`", table))
    assert names, "no metric in SPEC.md's table"
    explained = set(re.findall(r"`(pidone_[a-z_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    assert sorted(names - explained) == []
