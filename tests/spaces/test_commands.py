"""`lightrecipe spaces list | show | validate` through the real entry point, with exit codes."""

from __future__ import annotations

from lightrecipe.cli import main

GOOD = (
    "name: mine\n"
    "description: a small one\n"
    "fixed: {epochs: 10}\n"
    "params:\n"
    "  temperature: {float: [0.05, 0.5], log: true}  # why: PAPER.md\n"
    "  smoothing: {choice: [none, topk]}\n"
    "  smoothing_k: {int: [1, 64], log: true, when: {smoothing: topk}}\n"
)


def test_list_shows_every_builtin_with_its_param_count(capsys):
    assert main(["spaces", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "params", "description"]
    rows = {line.split()[0]: line.split()[1] for line in out[1:]}
    assert rows == {"digits-demo": "11", "paper-efficient": "11", "smoothing-ablation": "6", "wide": "24"}
    assert "Smoothed InfoNCE only" in "\n".join(out)


def test_show_builtin_prints_the_commented_yaml_and_a_table(capsys):
    assert main(["spaces", "show", "paper-efficient"]) == 0
    out = capsys.readouterr().out
    assert "name: paper-efficient" in out
    assert "# DisCo projector widths" in out  # the why-comments are part of what is shown
    table = out[out.index("param "):].splitlines()
    assert table[0].split() == ["param", "kind", "range", "log", "when"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert rows["temperature"].split() == ["temperature", "float", "0.05", "..", "0.5", "yes", "-"]
    assert rows["smoothing_k"].split() == ["smoothing_k", "int", "1", "..", "64", "yes", "smoothing", "in", "{topk}"]
    assert rows["proj_hidden_dim"].split()[1:3] == ["choice", "0,"]


def test_show_file(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    assert main(["spaces", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "# why: PAPER.md" in out and "smoothing_k" in out


def test_validate_ok(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    assert main(["spaces", "validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ok: mine, 3 params\n"
    assert captured.err == ""


def test_validate_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("temperature:", "temprature:"))
    assert main(["spaces", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"lightrecipe: error: {path}: parameter 'temprature': unknown recipe field (did you mean 'temperature'?)\n"
    )


def test_validate_missing_file_and_unknown_name(tmp_path, capsys):
    assert main(["spaces", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["spaces", "show", "wid"]) == 2
    assert "did you mean 'wide'" in capsys.readouterr().err


def test_validate_notes_a_baseline_outside_the_space(tmp_path, capsys):
    path = tmp_path / "narrow.yaml"
    path.write_text("name: narrow\nparams:\n  temperature: {float: [0.05, 0.15]}\n")
    assert main(["spaces", "validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ok: narrow, 1 param\n"
    assert captured.err.startswith("note: the baseline trial cannot be enqueued:")
    assert "--no-baseline" in captured.err
