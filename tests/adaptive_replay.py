"""Replaying a model arm's CSV rows through a fresh controller: the K of every row must
be what the controller chose from the rows before it (what the server reported)."""

from halospec_tui.controllers.base import Observation
from halospec_tui.controllers.model import ModelController


def _int(cell: str) -> int | None:
    return int(cell) if cell != "" else None


def replay_model(rows: list[dict[str, str]]) -> list[int]:
    """The K a fresh ModelController picks before each row, fed each row's figures as the
    runner of a sequential plan feeds them (draft length, success, latency, tokens,
    drafted, accepted, server decode time, reload time, the arm's steps left)."""
    c = ModelController()
    chosen = []
    for i, r in enumerate(rows):
        chosen.append(c.next_k())
        ok = r["success"] == "1"
        obs = Observation(
            int(r["draft_length"]), ok, int(r["latency_ms"]), int(r["tokens"]) if ok else 0,
            _int(r["drafted"]), _int(r["accepted"]),
            float(r["predicted_ms"]) if r["predicted_ms"] else None, _int(r["reload_ms"]),
            steps_left=len(rows) - i - 1,
        )  # fmt: skip
        c.observe(obs.k, ok, obs.latency_ms, obs)
    return chosen
