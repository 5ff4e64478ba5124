"""/metrics as servers write it: labels, timestamps, `_total`, several series, and the
recorded texts of llama-server, vLLM and SGLang (tests/data/metrics/SOURCES.md)."""

from pathlib import Path

import httpx
import respx
from hypothesis import given
from hypothesis import strategies as st

from halospec_tui.client import ChatClient, Reply
from halospec_tui.load_requests import Answer, Background, Span
from halospec_tui.metrics import DraftCounter, MetricsProbe, parse_draft_counters, read_draft_counts

DATA = Path(__file__).parent / "data" / "metrics"
BASE = "http://metrics.test"
VLLM_MODEL = "Qwen/Qwen3-8B"


def text(name: str) -> str:
    return (DATA / name).read_text()


# -- the recorded texts ---------------------------------------------------------------
def test_llama_server_as_recorded():
    # two requests whose answers said draft_n 39 and 45, draft_n_accepted 37 and 35
    counts = read_draft_counts(text("llama_server.txt"))
    assert (counts.drafted, counts.accepted) == (39 + 45, 37 + 35)
    assert counts.family == "llamacpp:spec_decode_num_draft_tokens"
    assert counts.counts_at_end  # llama.cpp adds a request's drafting when it ends


def test_vllm_sums_the_engines_and_leaves_out_positions_and_created():
    # engine 0 + engine 1 (render_engines.py); the per-position series (30+24+16 on
    # engine 0) and the `_created` timestamps (about 1.8e9) are not drafted tokens
    assert parse_draft_counters(text("vllm_0.txt")) == (120 + 30, 70 + 12)
    assert parse_draft_counters(text("vllm_0.txt"), VLLM_MODEL) == (120 + 30, 70 + 12)
    assert parse_draft_counters(text("vllm_2.txt")) == (180 + 105, 114 + 51)
    counts = read_draft_counts(text("vllm_1.txt"))
    assert counts.family == "vllm:spec_decode_num_draft_tokens" and not counts.counts_at_end


def test_sglang_exports_no_draft_counters():
    assert "sglang:spec_accept_length" in text("sglang.txt")
    assert read_draft_counts(text("sglang.txt"), VLLM_MODEL) is None


# -- the exposition format --------------------------------------------------------------
def test_labels_and_timestamps():
    t = (
        'llamacpp:spec_decode_num_draft_tokens_total{model="x"} 12 1700000000000\n'
        'llamacpp:spec_decode_num_accepted_tokens_total{model="x"} 7 1700000000000\n'
    )
    assert parse_draft_counters(t) == (12, 7)


def test_escaped_label_values():
    t = (
        'vllm:spec_decode_num_draft_tokens_total{model_name="a \\"b\\" \\\\ c",engine="0"} 5\n'
        'vllm:spec_decode_num_accepted_tokens_total{model_name="a \\"b\\" \\\\ c",engine="0"} 3\n'
    )
    assert parse_draft_counters(t, 'a "b" \\ c') == (5, 3)


def test_total_suffix_conventions():
    # TYPE names the family without _total, the samples carry it
    typed = (
        "# TYPE x:spec_decode_num_draft_tokens counter\n"
        "x:spec_decode_num_draft_tokens_total 5\n"
        "# TYPE x:spec_decode_num_accepted_tokens counter\n"
        "x:spec_decode_num_accepted_tokens_total 2\n"
    )
    assert parse_draft_counters(typed) == (5, 2)
    # no TYPE at all: the names as written
    assert parse_draft_counters(
        "x:spec_decode_num_draft_tokens_total 6\nx:spec_decode_num_accepted_tokens_total 1\n"
    ) == (6, 1)
    # a counter written without _total (llama-server does so for n_tokens_max)
    bare = (
        "# TYPE y:spec_decode_num_draft_tokens counter\ny:spec_decode_num_draft_tokens 8\n"
        "# TYPE y:spec_decode_num_accepted_tokens counter\ny:spec_decode_num_accepted_tokens 4\n"
    )
    assert parse_draft_counters(bare) == (8, 4)


def test_several_label_sets_are_summed():
    t = (
        'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 10\n'
        'vllm:spec_decode_num_draft_tokens_total{engine="1",model_name="m"} 32\n'
        'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 4\n'
        'vllm:spec_decode_num_accepted_tokens_total{engine="1",model_name="m"} 20\n'
    )
    assert parse_draft_counters(t, "m") == (42, 24)


TWO_MODELS = (
    'lemonade_llamacpp_spec_decode_num_draft_tokens_total{model_name="big"} 100\n'
    'lemonade_llamacpp_spec_decode_num_draft_tokens_total{model_name="small"} 30\n'
    'lemonade_llamacpp_spec_decode_num_accepted_tokens_total{model_name="big"} 60\n'
    'lemonade_llamacpp_spec_decode_num_accepted_tokens_total{model_name="small"} 9\n'
)


def test_a_model_label_selects_the_runs_model():
    assert parse_draft_counters(TWO_MODELS, "small") == (30, 9)
    assert parse_draft_counters(TWO_MODELS, "big") == (100, 60)
    # no series names the run's model, or no model known: all of them
    assert parse_draft_counters(TWO_MODELS, "other") == (130, 69)
    assert parse_draft_counters(TWO_MODELS) == (130, 69)
    # `model` is read as well as `model_name`
    t = TWO_MODELS.replace("model_name", "model")
    assert parse_draft_counters(t, "small") == (30, 9)


def test_drafted_and_accepted_come_from_one_server():
    mixed = "a:spec_decode_num_draft_tokens_total 3\nb:spec_decode_num_accepted_tokens_total 2\n"
    assert parse_draft_counters(mixed) is None
    # the current names win over older ones when a server writes both
    both = (
        "llamacpp:n_drafted_total 99\nllamacpp:n_drafted_accepted_total 98\n"
        "llamacpp:spec_decode_num_draft_tokens_total 5\n"
        "llamacpp:spec_decode_num_accepted_tokens_total 4\n"
    )
    assert parse_draft_counters(both) == (5, 4)


def test_values_that_are_not_counts():
    for bad in ("NaN", "+Inf", "-1"):
        t = (
            f"llamacpp:spec_decode_num_draft_tokens_total {bad}\n"
            "llamacpp:spec_decode_num_accepted_tokens_total 2\n"
        )
        assert parse_draft_counters(t) is None, bad
    float_counts = (
        "llamacpp:spec_decode_num_draft_tokens_total 7.0\n"
        "llamacpp:spec_decode_num_accepted_tokens_total 3e0\n"
    )
    assert parse_draft_counters(float_counts) == (7, 3)


def test_a_bad_line_elsewhere_does_not_hide_the_counters():
    t = (
        'broken{label="no end} 1\n'
        "llamacpp:spec_decode_num_draft_tokens_total 11\n"
        'also_broken{spec_decode_num_draft_tokens="x"} one\n'
        "llamacpp:spec_decode_num_accepted_tokens_total 6\n"
    )
    assert parse_draft_counters(t) == (11, 6)
    torn = (
        'llamacpp:spec_decode_num_draft_tokens_total{slot="0} 11\n'
        "llamacpp:spec_decode_num_accepted_tokens_total 6\n"
    )
    assert parse_draft_counters(torn) is None  # the drafted line itself is unreadable


@given(st.text(max_size=400))
def test_any_text_reads_as_counts_or_none(t):
    counts = read_draft_counts(t, "m")
    assert counts is None or (counts.drafted >= 0 and counts.accepted >= 0)


@given(st.lists(st.sampled_from([
    "llamacpp:spec_decode_num_draft_tokens_total", "vllm:spec_decode_num_accepted_tokens_total",
    "{", "}", '="', "m", " ", "\n", "1", "NaN", "# TYPE ", "counter", "_total", ",", "\\",
]), max_size=40))  # fmt: skip
def test_near_miss_texts_never_raise(parts):
    counts = read_draft_counts("".join(parts), "m")
    assert counts is None or (counts.drafted >= 0 and counts.accepted >= 0)


# -- DraftCounter over a sequence of vLLM scrapes ------------------------------------------
def metrics_sequence(*names: str) -> respx.Route:
    return respx.get(BASE + "/metrics").mock(
        side_effect=[httpx.Response(200, text=text(n)) for n in names]
    )


def unscored(tokens: int = 64) -> Reply:
    return Reply(True, 100, tokens)  # what a vLLM answer gives: no timings


@respx.mock
def test_draft_counter_reads_vllm_deltas():
    route = metrics_sequence("vllm_0.txt", "vllm_0.txt", "vllm_1.txt", "vllm_1.txt", "vllm_2.txt")
    logs: list[tuple[str, str]] = []
    client = ChatClient(BASE, VLLM_MODEL)
    counter = DraftCounter(MetricsProbe(client), lambda lvl, msg: logs.append((lvl, msg)))
    # the first step that asks for drafting settles the source (one read)
    first = counter.after(unscored(), counter.before(), k=3)
    assert counter.source == "metrics" and first.drafted is None
    assert ("info", "answers carry no draft timings: reading drafting from /metrics") in logs
    # step 1 ran on engine 0: 20 drafts of 3, 44 accepted (64 tokens = 44 + 20)
    before = counter.before()
    step1 = counter.after(unscored(), before, k=3)
    assert (step1.drafted, step1.accepted) == (60, 44)
    # step 2 ran on engine 1: 25 drafts of 3, 39 accepted
    step2 = counter.after(unscored(), counter.before(), k=3)
    assert (step2.drafted, step2.accepted) == (75, 39)
    assert route.call_count == 5 and not counter.last_shared
    assert all(c.request.method == "GET" for c in route.calls)


@respx.mock
def test_counters_that_go_down_give_no_figures():
    metrics_sequence("vllm_0.txt", "vllm_2.txt", "vllm_0.txt", "vllm_2.txt", "vllm_0.txt")
    logs: list[tuple[str, str]] = []
    counter = DraftCounter(
        MetricsProbe(ChatClient(BASE, VLLM_MODEL)), lambda lvl, msg: logs.append((lvl, msg))
    )
    counter.after(unscored(), None, k=3)
    for _ in range(2):  # a restarted server: the second read is lower
        reply = counter.after(unscored(), counter.before(), k=3)
        assert reply.drafted is None and reply.accepted is None
    assert [m for lvl, m in logs if lvl == "warning"] == [
        "the /metrics draft counters went down (server restarted?): that step's drafting is unknown"
    ]  # said once


# -- the background clients' drafting taken out --------------------------------------------
class FakeBackground:
    def __init__(self, *answers: Background) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[Span, Span]] = []

    def drafting_between(self, first: Span, second: Span) -> Background:
        self.asked.append((first, second))
        return self.answers.pop(0)


@respx.mock
def test_the_background_drafting_is_subtracted_or_marked_shared():
    metrics_sequence("vllm_0.txt", "vllm_0.txt", "vllm_1.txt", "vllm_1.txt", "vllm_2.txt",
                     "vllm_0.txt", "vllm_1.txt")  # fmt: skip
    across = Answer(sent=0.0, ended=1.0, drafted=6, accepted=2, tokens=8)
    bg = FakeBackground(
        Background(drafted=15, accepted=11, tokens=16, answers=1),  # between the reads
        Background(straddling=(across,)),  # vLLM counts while it runs: cannot be told apart
        Background(drafted=61, accepted=0, tokens=64, answers=2),  # more than the counters grew
    )
    logs: list[tuple[str, str]] = []
    counter = DraftCounter(
        MetricsProbe(ChatClient(BASE, VLLM_MODEL)), lambda lvl, m: logs.append((lvl, m)), bg
    )
    counter.after(unscored(), None, k=3)
    r = counter.after(unscored(), counter.before(), k=3)
    assert (r.drafted, r.accepted, counter.last_shared) == (60 - 15, 44 - 11, False)
    r = counter.after(unscored(), counter.before(), k=3)
    assert (r.drafted, r.accepted, counter.last_shared) == (75, 39, True)
    r = counter.after(unscored(), counter.before(), k=3)
    assert (r.drafted, r.accepted, counter.last_shared) == (None, None, True)
    assert counter.shared_steps == 2
    warnings = [m for lvl, m in logs if lvl == "warning"]
    assert warnings == [
        "drafting read from /metrics includes other requests' on some steps "
        "(background requests: 1 ran across a read): those steps' counts are marked shared"
    ]
    first, second = bg.asked[0]
    assert first.start <= first.end <= second.start <= second.end


@respx.mock
def test_a_step_without_drafting_settles_nothing_and_reads_nothing():
    route = metrics_sequence("vllm_0.txt")
    counter = DraftCounter(MetricsProbe(ChatClient(BASE, VLLM_MODEL)), lambda *a: None)
    assert counter.after(unscored(), counter.before(), k=0) == unscored()
    assert counter.source == "unknown" and route.call_count == 0
