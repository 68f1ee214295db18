"""The terminal progress of a sweep: a table of running and finished trials, key params and the metric.

Rows are data first (`rows`), text second (`render`), so a test checks the table without a terminal. On a
terminal the table is redrawn in place every few seconds; in a log (CI, `nohup`) each finished trial prints
one line and the whole table prints at the end of each study.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from lightrecipe.search.store import records
from lightrecipe.words import counted

ORDER = {records.RUNNING: 0, records.COMPLETE: 1, records.PRUNED: 2, records.DIVERGED: 3, records.FAILED: 4}
MAX_ROWS = 24  # a screenful: running trials, then the best finished ones
KEY_PARAMS = 4  # searched params shown as columns; the rest are in the trial database
STOPPED_NOTE = "; a pruned or diverged trial's value is from the epoch it stopped at"
REFRESH_S = 2.0  # redraw interval on a terminal
MAX_REASONS = 5  # failure lines under the table: enough to see a pattern, few enough to keep it on screen
REASON_CHARS = 160  # a failure line stays on about one terminal line; the full text is in the database


class Progress:
    def __init__(
        self,
        title: str,
        *,
        key_params: list[str],
        max_epochs: int,
        objective: str,
        stream: TextIO | None = None,
        live: bool | None = None,
        baseline_note: str = "",  # the baseline's fitted queue and batch (trainers/fit.py), "" when none
    ):
        self.title = title
        self.baseline_note = baseline_note
        self.key_params = list(key_params)[:KEY_PARAMS]
        self.max_epochs = max_epochs
        self.objective = objective
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.trials: dict[int, dict[str, Any]] = {}
        self._drawn_lines = 0
        self._last_draw = 0.0
        self._dirty = False

    # Tune pickles its configuration (the searcher, callbacks and so this object) when a run starts; a
    # terminal or a captured stream does not pickle, and a copy has no business printing anyway.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "stream": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stream = sys.stdout

    # --- data -----------------------------------------------------------------------------------
    def update(self, number: int, row: dict[str, Any]) -> None:
        before = self.trials.get(number, {}).get("state")
        self.trials[number] = {**self.trials.get(number, {}), **row}
        self._dirty = True
        state = row.get("state")
        if not self.live and state != before and state in ORDER and state != records.RUNNING:
            self._print(self.line(number))

    def rows(self) -> list[dict[str, Any]]:
        """Running trials first (by number), then complete ones best first, then the ones stopped early
        (pruned, diverged, failed), best first: a stopped trial's value is from an earlier epoch, so it never
        sits above a complete one."""

        def key(item: tuple[int, dict[str, Any]]):
            number, t = item
            state = t.get("state", records.RUNNING)
            value = t.get("value")
            score = -value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf
            return (0, 0, number, 0) if state == records.RUNNING else (1, ORDER.get(state, len(ORDER)), score, number)

        return [{"trial": n, **t} for n, t in sorted(self.trials.items(), key=key)]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ORDER}
        for t in self.trials.values():
            out[t.get("state", records.RUNNING)] = out.get(t.get("state", records.RUNNING), 0) + 1
        return out

    # --- text -----------------------------------------------------------------------------------
    def render(self) -> str:
        header = ["trial", "state", "epoch", self.objective, *self.key_params, "node", "time"]
        body = []
        rows = self.rows()
        for r in rows[:MAX_ROWS]:
            params = r.get("params") or {}
            body.append(
                [
                    f"{r['trial']}{'*' if r.get('baseline') else ''}",
                    str(r.get("state", "")),
                    f"{r.get('epoch', 0)}/{self.max_epochs}",
                    _cell(r.get("value")),
                    *[_cell(params.get(p, "-")) for p in self.key_params],
                    str(r.get("node") or "").split("/")[-1],
                    _duration(r.get("wall_seconds")),
                ]
            )
        widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
        lines = [self.summary(), "  ".join(h.ljust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
        if len(rows) > MAX_ROWS:
            lines.append(f"... {counted(len(rows) - MAX_ROWS, 'more finished trial')} in the trial database")
        lines.append(f"(* = ResNet-50 baseline{self._fitted()})" + (STOPPED_NOTE if any(r.get("state") in (records.PRUNED, records.DIVERGED)
                                                                      for r in rows[:MAX_ROWS]) else ""))
        lines += self.reasons()
        return "\n".join(lines)

    def _fitted(self) -> str:
        """'; queue 128, batch 64: fitted to 1078 training images' after the baseline's name, when fitting
        changed it (trainers/fit.py)."""
        return f"; {self.baseline_note}" if self.baseline_note else ""

    def reasons(self) -> list[str]:
        """Why trials failed or diverged, one line each (the newest MAX_REASONS; all are in the database)."""
        ended = [(n, t) for n, t in sorted(self.trials.items()) if t.get("state") in (records.FAILED, records.DIVERGED)]
        return [f"trial {n} {t['state']}: {_clip(str(t.get('error') or 'no reason recorded'))}"
                for n, t in ended[-MAX_REASONS:]]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        best = self.best()
        best_text = f"; best: trial {best[0]} {self.objective} {_cell(best[1])}" if best else ""
        return f"{self.title}: {counts or 'no trials yet'}{best_text}"

    def best(self) -> tuple[int, float] | None:
        done = [
            (n, t["value"])
            for n, t in self.trials.items()
            if t.get("state") == records.COMPLETE and isinstance(t.get("value"), (int, float))
        ]
        return max(done, key=lambda item: item[1]) if done else None

    def line(self, number: int) -> str:
        t = self.trials[number]
        params = ", ".join(f"{k}={_cell(v)}" for k, v in (t.get("params") or {}).items())
        tag = f" (baseline{self._fitted()})" if t.get("baseline") else ""
        reason = f": {_clip(str(t['error']))}" if t.get("error") and t.get("state") in (records.FAILED, records.DIVERGED) else ""
        return (
            f"[{self.title}] trial {number}{tag} {t.get('state')}{reason} at epoch {t.get('epoch', 0)}/"
            f"{self.max_epochs}, {self.objective} {_cell(t.get('value'))}, {_duration(t.get('wall_seconds'))}"
            + (f"; {params}" if params else "")
        )

    # --- drawing --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Redraw the live table when something changed and the refresh interval passed."""
        if self.live and self._dirty and time.monotonic() - self._last_draw >= REFRESH_S:
            self._draw()

    def close(self) -> None:
        if self.live:
            self._draw()
        else:
            self._print(self.render())

    def _draw(self) -> None:
        text = self.render()
        if self._drawn_lines:
            self.stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")  # back to the table's first line, clear below
        self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn_lines = text.count("\n") + 1
        self._last_draw = time.monotonic()
        self._dirty = False

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3g}"
    return str(value)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
