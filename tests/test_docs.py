"""What the repository tells its readers points at things the repository holds: no citation of files outside it,
every ``docs/<page>.md`` named exists, and every ``docs/paper.md §n`` cited is a section of that page."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"SPEC(\.md| ?§)|DESIGN\.md|\.\./shared")
DOC = re.compile(r"\bdocs/([\w-]+\.md)")
PAPER_SECTION = re.compile(r"docs/paper\.md §(\d+(?:\.\d+)?)")


def texts(root: Path = ROOT) -> dict[Path, str]:
    """README, the docs, the package (code and config), the scripts, the tests, the Makefile and CI."""
    files = [root / "README.md", root / "Makefile", *sorted((root / ".ci").glob("*"))]
    for folder, patterns in (("docs", ("*.md",)), ("gmf_repro", ("*.py", "*.yaml")), ("scripts", ("*",)),
                             ("tests", ("*.py",))):
        files += [f for p in patterns for f in sorted((root / folder).rglob(p)) if f.is_file()]
    return {f: f.read_text(errors="replace") for f in files if f.is_file() and f != Path(__file__).resolve()}


def problems(root: Path = ROOT) -> list[str]:
    sections = set(re.findall(r"^#+ §(\d+(?:\.\d+)?) ", (root / "docs" / "paper.md").read_text(), re.M))
    out = []
    for f, text in texts(root).items():
        where = f.relative_to(root)
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                out.append(f"{where}:{n}: cites a file outside the repository: {line.strip()[:80]}")
            out += [f"{where}:{n}: names docs/{page}, which does not exist"
                    for page in DOC.findall(line) if not (root / "docs" / page).exists()]
            out += [f"{where}:{n}: cites docs/paper.md §{s}, which has no such section"
                    for s in PAPER_SECTION.findall(line) if s not in sections]
    return out


def test_nothing_cites_what_the_repository_lacks() -> None:
    assert problems() == []


def test_a_planted_dead_reference_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "paper.md").write_text("# The paper\n## §1 GMF\n### §1.2 Gradient\n")
    (tmp_path / "README.md").write_text("See docs/paper.md §1.2 and docs/paper.md §9, docs/missing.md, SPEC §4.\n")
    (tmp_path / "gmf_repro").mkdir()
    (tmp_path / "gmf_repro" / "x.py").write_text('"""As DESIGN.md says."""\n')
    found = problems(tmp_path)
    assert len(found) == 4
    assert any("§9" in p for p in found) and any("missing.md" in p for p in found)
    assert sum("outside the repository" in p for p in found) == 2


LINK = re.compile(r"\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"(?<![\w/.-])((?:gmf_repro|scripts|tests|conf|docs)/[\w./-]*\.(?:py|yaml|md|sh|txt|png|json))"
                       r"\b")


def dead_links(root: Path = ROOT) -> list[str]:
    """Markdown links of the README and the docs (relative to the page) and the repository paths they name
    (``gmf_repro/threads.py``, ``conf/bench.yaml``) that point at nothing; globs and placeholders are skipped."""
    out = []
    for f in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for target in LINK.findall(line):
                if not target.startswith(("http://", "https://", "#", "mailto:")) and \
                        not (f.parent / target.split("#")[0]).exists():
                    out.append(f"{f.relative_to(root)}:{n}: links {target}, which does not exist")
            text = LINK.sub("]", line)  # a link's target is checked above, relative to its page
            out += [f"{f.relative_to(root)}:{n}: names {path}, which does not exist" for path in REPO_PATH.findall(text)
                    if "*" not in path and "<" not in path and not (root / path).exists()]
    return out


def test_every_link_and_path_in_the_readme_and_docs_exists() -> None:
    assert dead_links() == []


def test_a_planted_dead_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "gmf_repro").mkdir()
    (tmp_path / "gmf_repro" / "threads.py").write_text("")
    (tmp_path / "docs" / "usage.md").write_text("[back](../README.md), [gone](gone.md#x), `gmf_repro/threads.py`\n")
    (tmp_path / "README.md").write_text("![chart](docs/chart.png) [usage](docs/usage.md#cpu) gmf_repro/nothere.py "
                                        "conf/extractor/*.yaml [web](https://example.org)\n")
    found = dead_links(tmp_path)
    assert len(found) == 3 and sum("gone.md" in p or "chart.png" in p or "nothere.py" in p for p in found) == 3
