"""The verdict's paste line: the run's own launch command for the recommended K
(--actuator launch), vLLM's and SGLang's flags on those servers, else the actuator's
form; and the server kind the rows name."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

from halospec_tui.launch_template import parse_templates, paste_line
from halospec_tui.results.export_json import verdict_dict
from halospec_tui.results.export_text import paste_setting, recommendation_line, verdict_lines
from halospec_tui.stats import StepSample
from halospec_tui.verdict import decide, decision_of, main_server_kind

PY = sys.executable
VLLM = PY + " serve M --port {port} --speculative-config '{\"model\": \"D\", \"num_speculative_tokens\": {k}}'"
VLLM_NOSPEC = PY + " serve M --port {port}"


def test_the_paste_line_is_the_launch_command_for_the_recommended_k():
    name = parse_templates(VLLM, VLLM_NOSPEC).actuator_name()
    assert paste_line(name, 2) == (
        f"launch command: {PY} serve M --port {{port}} --speculative-config "
        "'{\"model\": \"D\", \"num_speculative_tokens\": 2}'"
    )
    assert paste_line(name, 0) == f"launch command: {PY} serve M --port {{port}}"
    p = "launch:srv --port {port} --n {k} --p {p_min}"
    assert paste_line(p, 16, 0.75) == "launch command: srv --port {port} --n 16 --p 0.75"
    assert paste_line(p, 0) == (
        "launch command: yours without its speculative flags (the run had no --launch-nospec)"
    )
    assert paste_line("request", 2) is None
    # the verdict's paste line: the launch command wins over the server kind
    assert paste_setting(2, name, 0.0, "vllm") == paste_line(name, 2)


def test_the_paste_line_speaks_vllm_and_sglang_whatever_actuator_ran():
    assert paste_setting(3, "request", 0.0, "vllm") == (
        "vLLM flags: --speculative-config '{\"model\": \"DRAFT\", \"num_speculative_tokens\": 3}'"
    )
    assert paste_setting(0, "request", 0.0, "vllm") == (
        "vLLM flags: no speculation (no --speculative-config)"
    )
    assert paste_setting(2, "request", 0.0, "sglang") == (
        "SGLang flags: --speculative-algorithm STANDALONE --speculative-draft-model-path DRAFT "
        "--speculative-num-steps 2 --speculative-eagle-topk 1 --speculative-num-draft-tokens 3"
    )
    # the original's field never reached any server; llama-server keeps its own form
    assert paste_setting(3, "field:speculative_draft_length", 0.0, "vllm").startswith(
        "K never reached the server"
    )
    assert paste_setting(3, "request", 0.0, "llama-server") == (
        'request body: "speculative": {"n_max": 3, "n_min": 0, "p_min": 0}'
    )
    assert paste_setting(3, "request") == paste_setting(3, "request", 0.0, "")


def test_main_server_kind_is_the_kind_most_rows_name():
    def s(kind: str) -> Any:  # a sample as it reads once StepSample carries the column
        return SimpleNamespace(server_kind=kind)

    assert main_server_kind([s(""), s("vllm"), s("sglang"), s("sglang")]) == "sglang"
    assert main_server_kind([s("vllm"), s("sglang")]) == "vllm"  # a tie: the first seen
    assert main_server_kind([s(""), s("")]) == ""
    assert main_server_kind([]) == ""
    assert main_server_kind([StepSample("fixed_1", 1, True, 100, 64)]) == ""


def test_the_recommendation_line_carries_the_server_kind_through():
    # fixed_2 answers in 100 ms every round, nospec in 300 ms: fixed_2 is recommended
    rows = [StepSample(m, k, True, lat, 64, round=r)
            for r in range(1, 7) for m, k, lat in (("nospec", 0, 300), ("fixed_2", 2, 100))]  # fmt: skip
    v = decide(rows)
    assert v.recommended == "fixed_2" and v.decisive
    vllm = "vLLM flags: --speculative-config '{\"model\": \"DRAFT\", \"num_speculative_tokens\": 2}'"
    assert recommendation_line(v, "request", "vllm") == f"use K = 2; {vllm}"
    assert recommendation_line(v, "request") == (
        'use K = 2; request body: "speculative": {"n_max": 2, "n_min": 0, "p_min": 0}'
    )
    lines = verdict_lines(v, decision_of(rows), "request", None, "vllm")
    assert lines[-1] == f"recommendation: use K = 2; {vllm}"
    assert verdict_dict(v, decision_of(rows), "request", "vllm")["recommendation"] == (
        f"use K = 2; {vllm}"
    )
