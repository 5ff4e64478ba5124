from helpers import csv_rows

from halospec_tui.metrics import parse_draft_counters

LLAMA = """# HELP llamacpp:spec_decode_num_draft_tokens_total Speculative: Total draft tokens generated
# TYPE llamacpp:spec_decode_num_draft_tokens_total counter
llamacpp:spec_decode_num_draft_tokens_total 271
# TYPE llamacpp:spec_decode_num_accepted_tokens_total counter
llamacpp:spec_decode_num_accepted_tokens_total 199
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 90
llamacpp:requests_processing 0
"""


def test_parse_llama_server_metrics():
    assert parse_draft_counters(LLAMA) == (271, 199)


def test_parse_prefixed_and_old_names():
    assert parse_draft_counters("lemonade_llamacpp_spec_decode_num_draft_tokens_total 10\n"
                                "lemonade_llamacpp_spec_decode_num_accepted_tokens_total 7\n") == (10, 7)  # fmt: skip
    assert parse_draft_counters(
        "llamacpp:n_drafted_total 5.0\nllamacpp:n_drafted_accepted_total 2\n"
    ) == (5, 2)


def test_parse_missing_counters():
    assert parse_draft_counters("") is None
    assert parse_draft_counters("llamacpp:spec_decode_num_draft_tokens_total 3\n") is None
    assert parse_draft_counters("<html>not metrics</html>") is None


def test_drafting_from_metrics_when_answers_carry_no_timings(tmp_path):
    from test_cli import FAST, run

    out = tmp_path / "m.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_8", "--steps", "3", "--warmup", "0",
             "--backend", "sim", "--sim-no-timings", "--csv", str(out), "--strict", *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "reading drafting from /metrics" in p.stderr
    rows = csv_rows(out)
    assert all(r["predicted_ms"] == "" for r in rows)  # really no timings
    # the first successful step settles the source; counters are read around later ones
    assert rows[0]["drafted"] == "" and all(r["drafted"] != "" for r in rows[1:])
    by_k = {k: [int(r["drafted"]) for r in rows[1:] if r["draft_length"] == k] for k in ("1", "8")}
    assert all(d > 0 for d in by_k["1"] + by_k["8"])
    # K=1 drafts at most one token per pass, and a pass yields at least one token
    assert all(d <= 64 for d in by_k["1"]) and sum(by_k["8"]) > 2 * sum(by_k["1"])
