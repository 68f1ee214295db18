"""What the project cites, it carries: no reference to a file outside the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_science_page_exists_and_nothing_cites_a_file_the_project_lacks():
    assert (ROOT / "docs" / "science.md").is_file()
    texts = [ROOT / "README.md", *(ROOT / "lightrecipe").rglob("*.py"), *(ROOT / "lightrecipe").rglob("*.yaml")]
    team_only = ("PAPER.md", "STYLE.md", "ARCHITECTURE.md")  # the team's notes, not part of the project
    citing = [str(p.relative_to(ROOT)) for p in texts if any(name in p.read_text() for name in team_only)]
    assert citing == []
    assert "arXiv" in (ROOT / "docs" / "science.md").read_text()
