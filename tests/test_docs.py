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
