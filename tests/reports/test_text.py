"""The rules that put database names into the report's text files, checked on the hostile names directly
(test_hostile.py checks a whole report in `make test`)."""

from __future__ import annotations

import re

import pytest
import yaml

from lightrecipe.reports import tables
from lightrecipe.reports.best_recipes import safe_name, write_best_recipes
from lightrecipe.reports.text import markdown_text, one_line
from lightrecipe.search.store import records
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe
from tests.reports import sweepdb
from tests.reports.commonmark import literal

NAMES = [sweepdb.HOSTILE_ARCH, sweepdb.HOSTILE_SPACE, sweepdb.HOSTILE_CHOICE, *sweepdb.ESCAPING_ARCHS,
         "mobilenetv3_large_100", "_lead and trail_", "a\x85b\vc\fd\u2029e"]


@pytest.mark.parametrize("name", NAMES)
def test_markdown_text_renders_as_the_name_on_one_line(name):
    shown = markdown_text(name)
    assert literal(shown) == one_line(name)
    assert len(shown.splitlines()) == 1


def test_arch_names_keep_their_underscores_readable_in_markdown():
    assert markdown_text("mobilenetv3_large_100") == "mobilenetv3_large_100"
    assert markdown_text("_x_ *y*") == r"\_x\_ \*y\*"


@pytest.mark.parametrize("name", NAMES)
def test_one_line_leaves_no_line_break_for_yaml_or_markdown(name):
    text = one_line(name)
    assert text.splitlines() == [text] or text == ""
    assert yaml.safe_load(f"# {text}\nkey: 1\n") == {"key": 1}  # a YAML comment cannot end early


@pytest.mark.parametrize("name", NAMES)
def test_safe_name_is_a_plain_file_name(name, tmp_path):
    safe = safe_name(name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", safe) and not safe.endswith((".", "_")), safe
    assert (tmp_path / f"best-{safe}.yaml").resolve().parent == tmp_path.resolve()


def test_best_recipes_of_colliding_names_get_one_file_each_inside_the_folder(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    url = records.default_storage_url(str(folder))
    for i, arch in enumerate(sweepdb.ESCAPING_ARCHS):
        sweepdb.build_study(url, arch=arch, space=sweepdb.HOSTILE_SPACE, recipe_arch=sweepdb.VALID_ARCH,
                            params_count=1, trials=[sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS), 0.5 + 0.01 * i)])
    out = tmp_path / "report"
    out.mkdir()
    notes: list[str] = []
    files = write_best_recipes(tables.load_trials(str(folder)), "knn_top1", out, notes)
    assert notes == [] and set(files) == set(sweepdb.ESCAPING_ARCHS)
    assert sorted(p.name for p in files.values()) == ["best-a_b-2.yaml", "best-a_b-3.yaml", "best-a_b.yaml",
                                                      "best-arch.yaml", "best-m_pwned_2_one_two_three_four.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "sweep"]
    for path in files.values():
        assert set(yaml.safe_load(path.read_text())) == set(FIELD_NAMES)
        assert Recipe.from_file(path).arch == sweepdb.VALID_ARCH
