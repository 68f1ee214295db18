"""The progress table as data (rows, counts, best) and as text, without a terminal."""

import io

from lightrecipe.search.tune.progress import MAX_ROWS, Progress


def make(stream=None, live=False):
    return Progress(
        "space/arch", key_params=["temperature", "smoothing"], max_epochs=4, objective="knn_top1",
        stream=stream or io.StringIO(), live=live,
    )


def test_rows_put_running_trials_first_then_finished_best_first():
    p = make()
    p.update(0, {"state": "complete", "value": 0.6, "epoch": 4, "baseline": True, "params": {"temperature": 0.2}})
    p.update(1, {"state": "running", "epoch": 2, "value": 0.5})
    p.update(2, {"state": "complete", "value": 0.8, "epoch": 4})
    p.update(3, {"state": "failed", "epoch": 0})
    p.update(4, {"state": "pruned", "value": 0.3, "epoch": 1})
    assert [r["trial"] for r in p.rows()] == [1, 2, 0, 4, 3]
    assert p.best() == (2, 0.8)
    assert p.counts() == {"running": 1, "complete": 2, "pruned": 1, "diverged": 0, "failed": 1}


def test_render_shows_state_epoch_metric_key_params_and_the_baseline_mark():
    p = make()
    p.update(0, {"state": "complete", "value": 0.61234, "epoch": 4, "baseline": True,
                 "params": {"temperature": 0.2, "smoothing": "none"}, "node": "h/1.2.3.4/abcd1234",
                 "wall_seconds": 75.0})
    p.update(1, {"state": "running", "epoch": 2, "value": 0.5, "params": {"temperature": 0.0712}})
    lines = p.render().splitlines()
    assert lines[0] == "space/arch: 1 running, 1 complete; best: trial 0 knn_top1 0.6123"
    assert lines[1].split() == ["trial", "state", "epoch", "knn_top1", "temperature", "smoothing", "node", "time"]
    assert lines[2].split() == ["1", "running", "2/4", "0.5000", "0.0712", "-", "-"]
    assert lines[3].split() == ["0*", "complete", "4/4", "0.6123", "0.2000", "none", "abcd1234", "1m15s"]
    assert lines[-1] == "(* = ResNet-50 baseline)"


def test_render_caps_the_table_at_a_screenful():
    p = make()
    for n in range(MAX_ROWS + 5):
        p.update(n, {"state": "complete", "value": n / 100, "epoch": 4})
    text = p.render()
    assert "... 5 more finished trials" in text
    assert len(text.splitlines()) == MAX_ROWS + 4


def test_in_a_log_each_finished_trial_prints_one_line_and_the_table_prints_at_the_end():
    out = io.StringIO()
    p = make(out)
    p.update(0, {"state": "running", "epoch": 1, "params": {"temperature": 0.1}})
    assert out.getvalue() == ""
    p.update(0, {"state": "pruned", "epoch": 1, "value": 0.25, "wall_seconds": 3.2})
    assert out.getvalue() == "[space/arch] trial 0 pruned at epoch 1/4, knn_top1 0.2500, 3s; temperature=0.1000\n"
    p.update(0, {"state": "pruned"})  # the same state again prints nothing
    assert out.getvalue().count("\n") == 1
    p.close()
    assert "space/arch: 1 pruned" in out.getvalue()


def test_on_a_terminal_the_table_is_redrawn_in_place():
    out = io.StringIO()
    p = make(out, live=True)
    p.update(0, {"state": "running", "epoch": 1})
    p.tick()
    first = out.getvalue()
    assert first.startswith("space/arch: 1 running") and "\x1b[" not in first
    p.update(0, {"state": "complete", "epoch": 4, "value": 0.9})
    p._last_draw = 0.0  # the refresh interval has passed
    p.tick()
    redraw = out.getvalue()[len(first):]
    assert redraw.startswith(f"\x1b[{first.count(chr(10))}F\x1b[J")
    assert "1 complete" in redraw


def test_failed_and_diverged_trials_say_why_in_the_log_and_under_the_table():
    out = io.StringIO()
    p = make(out)
    p.update(2, {"state": "failed", "epoch": 0, "error": "data_root '/data/x' does not exist on this node"})
    p.update(3, {"state": "diverged", "epoch": 1, "error": "loss became nan at epoch 2\n(try a lower lr)"})
    p.update(4, {"state": "pruned", "epoch": 1, "value": 0.2, "error": ""})
    logged = out.getvalue().splitlines()
    assert logged[0].startswith("[space/arch] trial 2 failed: data_root '/data/x' does not exist on this node at ")
    assert logged[1].startswith("[space/arch] trial 3 diverged: loss became nan at epoch 2 (try a lower lr) at ")
    assert logged[2].startswith("[space/arch] trial 4 pruned at epoch 1/4")
    assert p.render().splitlines()[-2:] == [
        "trial 2 failed: data_root '/data/x' does not exist on this node",
        "trial 3 diverged: loss became nan at epoch 2 (try a lower lr)",
    ]
    p.update(5, {"state": "failed", "error": "x" * 500})
    assert len(p.render().splitlines()[-1]) < 200  # a long reason stays on about one line


def test_a_pruned_trial_with_a_higher_early_value_sits_below_complete_ones_and_the_table_says_why():
    p = make()
    p.update(0, {"state": "complete", "value": 0.55, "epoch": 4, "baseline": True})
    p.update(1, {"state": "pruned", "value": 0.57, "epoch": 1})  # higher, but measured at epoch 1 of 4
    p.update(2, {"state": "complete", "value": 0.67, "epoch": 4})
    p.update(3, {"state": "diverged", "value": 0.60, "epoch": 2})
    assert [r["trial"] for r in p.rows()] == [2, 0, 1, 3]
    assert p.render().splitlines()[-2] == (
        "(* = ResNet-50 baseline); a pruned or diverged trial's value is from the epoch it stopped at")


def test_a_fitted_baseline_is_named_with_its_queue_and_batch():
    """The trial table's legend and the baseline's finished line say what fitting the ResNet-50 settings to the
    data changed (trainers/fit.py)."""
    out = io.StringIO()
    note = "queue 128, batch 64: fitted to 1078 training images"
    p = Progress("space/arch", key_params=["temperature"], max_epochs=4, objective="knn_top1", stream=out,
                 live=False, baseline_note=note)
    p.update(0, {"state": "complete", "value": 0.5, "epoch": 4, "baseline": True, "wall_seconds": 5.0,
                 "params": {"temperature": 0.2}})
    assert out.getvalue().splitlines() == [
        f"[space/arch] trial 0 (baseline; {note}) complete at epoch 4/4, knn_top1 0.5000, 5s; temperature=0.2000"]
    assert p.render().splitlines()[-1] == f"(* = ResNet-50 baseline; {note})"
