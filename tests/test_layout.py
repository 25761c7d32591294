"""The house rules over bench/'s files: functions under 60 lines, files under 300, nothing pointing outside the
repository."""

from tests.helpers import ROOT


def test_no_bench_function_is_over_60_lines():
    import ast

    long = []
    for path in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.name}:{node.name} {node.end_lineno - node.lineno + 1} lines")
    assert not long


def test_no_bench_file_is_over_300_lines():
    assert not [f"{p.name} {n}" for p in (ROOT / "bench").rglob("*.py") if (n := len(p.read_text().splitlines())) > 300]


def test_nothing_points_outside_the_repository():
    for path in [ROOT / "README.md", ROOT / "results" / "README.md", *(ROOT / "docs").glob("*.md"),
                 *(ROOT / "bench").rglob("*.py")]:
        assert "../shared" not in path.read_text(), path


def test_the_readme_is_short_and_its_links_and_the_docs_links_resolve():
    import re

    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 150  # a newcomer's page; the rest is in docs/
    for page in [readme, *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
