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


def test_every_install_hint_works_in_a_checkout():
    """No package index has lightrecipe, so `pip install 'lightrecipe[dashboard]'` fails for every user: a hint,
    in the README or printed by the code, installs an extra of the checkout (`pip install -e '.[NAME]'`) and
    names an extra pyproject.toml has."""
    import re

    import tomllib

    from lightrecipe.errors import install_extra

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    files = [ROOT / "README.md", *(ROOT / "lightrecipe").rglob("*.py")]
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in files}
    from_an_index = [name for name, text in texts.items() if re.search(r"pip install ['\"]?lightrecipe", text)]
    assert from_an_index == []
    named = set(re.findall(r"pip install -e '\.\[(\w+)\]'", texts["README.md"]))
    named |= {m for text in texts.values() for m in re.findall(r"install_extra\(['\"](\w+)['\"]\)", text)}
    assert {"dashboard", "postgres", "mlflow"} <= named <= extras
    assert install_extra("postgres").startswith("pip install -e '.[postgres]' in the lightrecipe checkout")


def test_every_test_or_benchmark_file_the_readme_or_the_package_names_exists():
    """Tests and benchmarks move between folders; a path the README or a docstring cites must move with them."""
    import re

    files = [ROOT / "README.md", *(ROOT / "lightrecipe").rglob("*.py")]
    cited = {(str(p.relative_to(ROOT)), path) for p in files
             for path in re.findall(r"\b(?:tests|benchmarks)/[\w./-]+\.py\b", p.read_text())}
    assert cited, "the pattern finds no path: it is broken"
    assert sorted((where, path) for where, path in cited if not (ROOT / path).is_file()) == []
