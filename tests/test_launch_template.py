"""--actuator launch, without a server: the template rules, the actuator's name in the
rows, and which arms a template can run."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from halospec_tui.arms import parse_arm
from halospec_tui.engines import k_from_sglang_args, k_from_vllm_args
from halospec_tui.launch_template import (
    LaunchTemplates,
    TemplateError,
    arm_problem,
    fill,
    parse_templates,
    templates_of,
)

PY = sys.executable
VLLM = PY + " serve M --port {port} --speculative-config '{\"model\": \"D\", \"num_speculative_tokens\": {k}}'"
VLLM_NOSPEC = PY + " serve M --port {port}"


def test_only_the_three_placeholders_are_replaced_and_every_other_brace_is_kept():
    assert fill('{"a": {k}, "b": {}} {port}{p_min} {{x}} {k}}', {"k": "3", "port": "9", "p_min": "0.5"}) == (
        '{"a": 3, "b": {}} 90.5 {{x}} 3}'
    )  # fmt: skip
    assert fill("{port} {k}", {"k": "2"}) == "{port} 2"  # a placeholder not given stays


def test_the_vllm_example_resolves_to_the_json_vllm_reads():
    t = parse_templates(VLLM, VLLM_NOSPEC)
    env, argv = t.command(3, 8001)
    assert env == {}
    assert argv == [PY, "serve", "M", "--port", "8001", "--speculative-config",
                    '{"model": "D", "num_speculative_tokens": 3}']  # fmt: skip
    assert json.loads(argv[-1]) == {"model": "D", "num_speculative_tokens": 3}
    assert k_from_vllm_args(shlex.join(argv)) == 3  # as the vLLM flags are read back
    assert t.command(0, 8001) == ({}, [PY, "serve", "M", "--port", "8001"])
    assert k_from_vllm_args(shlex.join(t.command(0, 8001)[1])) == 0


def test_sglang_template_and_environment_words():
    spec = ("CUDA_VISIBLE_DEVICES=0,1 A=b " + PY + " -m sglang.launch_server --port {port} "
            "--speculative-algorithm STANDALONE --speculative-num-steps {k} "
            "--speculative-eagle-topk 1 --speculative-num-draft-tokens 9")  # fmt: skip
    env, argv = parse_templates(spec).command(5, 30000)
    assert env == {"CUDA_VISIBLE_DEVICES": "0,1", "A": "b"}
    assert argv[:5] == [PY, "-m", "sglang.launch_server", "--port", "30000"]
    assert k_from_sglang_args(shlex.join(argv)) == 5


def test_p_min_and_k_in_the_nospec_template():
    t = parse_templates(PY + " --port {port} --n {k} --p {p_min}", PY + " --port {port} --n {k}")
    assert t.command(16, 1, 0.75)[1] == [PY, "--port", "1", "--n", "16", "--p", "0.75"]
    assert t.command(2, 1)[1][-1] == "0"  # p_min 0 written as 0
    assert t.command(0, 1)[1] == [PY, "--port", "1", "--n", "0"]  # K 0: the nospec template


@pytest.mark.parametrize(
    ("spec", "nospec", "message"),
    [
        (PY + " --port {port}", None, "--launch has no {k}"),
        (PY + " --n {k}", None, "--launch has no {port}"),
        (PY + " --port {port} --n {K}", None, "--launch: unknown placeholder {K}"),
        (PY + " --port {port} --n {k} --p {pmin}", None, "--launch: unknown placeholder {pmin}"),
        (PY + " --port {port} --n {k} '", None, "--launch cannot be split into words: No closing quotation"),
        ("no-such-server-here --port {port} {k}", None, "--launch: command 'no-such-server-here' not found on PATH"),
        ("/no/such/server --port {port} {k}", None, "--launch: command '/no/such/server' not found"),
        ("A=1 --port={port} {k}", None, "--launch: command '--port=1' not found on PATH"),
        ("A={k} B={port}", None, "--launch holds no command"),
        (PY + " --port {port} {k}", PY + " --port", "--launch-nospec has no {port}"),
        (PY + " --port {port} {k}", "nope --port {port}", "--launch-nospec: command 'nope' not found"),
        (PY + " --port {port} {k} | nospec: x", None, "--launch may not contain '| nospec:'"),
    ],
)  # fmt: skip
def test_bad_templates_are_refused_in_one_line(spec, nospec, message):
    with pytest.raises(TemplateError) as e:
        parse_templates(spec, nospec)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_file_that_is_not_executable_is_refused(tmp_path):
    f = tmp_path / "server"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    with pytest.raises(TemplateError, match=f"^--launch: '{f}' is not executable$"):
        parse_templates(f"{f} --port {{port}} {{k}}")


def test_double_braces_are_jinja_not_placeholders():
    t = parse_templates(PY + " --port {port} --n {k} --chat-template '{{messages}}{{ x }}'")
    assert t.command(1, 2)[1][-1] == "{{messages}}{{ x }}"


def test_which_arms_a_template_can_run():
    plain = parse_templates(PY + " --port {port} --n {k}")
    both = parse_templates(PY + " --port {port} --n {k} --p {p_min}", PY + " --port {port}")
    assert arm_problem(plain, parse_arm("fixed_3")) is None
    assert arm_problem(plain, parse_arm("adaptive")) is None  # the original rule: K >= 1
    assert arm_problem(plain, parse_arm("nospec")).startswith(
        "arm nospec runs K 0 (no speculation): give --launch-nospec"
    )
    for name in ("adaptive:model", "adaptive:bandit"):
        assert arm_problem(plain, parse_arm(name)).startswith(f"arm {name} may choose K 0")
        assert arm_problem(both, parse_arm(name)) is None
    assert arm_problem(plain, parse_arm("pmin:0.75")) == (
        "arm pmin:0.75 sets p_min 0.75: --launch needs {p_min} (e.g. --spec-draft-p-min {p_min})"
    )
    assert arm_problem(both, parse_arm("pmin:0.75")) is None
    with pytest.raises(TemplateError, match="K 0 .* needs --launch-nospec"):
        plain.command(0, 1)


def test_the_rows_name_both_templates_with_keys_masked():
    t = LaunchTemplates("vllm serve M --port {port} --api-key sk-123456 --n {k}",
                        "vllm serve M --port {port} --api-key=sk-123456 --other s3cret-key")  # fmt: skip
    name = t.actuator_name(secrets=("s3cret-key",))
    assert name == (
        "launch:vllm serve M --port {port} --api-key [REDACTED] --n {k} | nospec: "
        "vllm serve M --port {port} --api-key=[REDACTED] --other [REDACTED]"
    )
    back = templates_of(name)
    assert back is not None and back.spec.endswith("--n {k}") and back.nospec.endswith("[REDACTED]")
    assert templates_of("launch:a {k} --port {port}") == LaunchTemplates("a {k} --port {port}")
    assert templates_of("llama-server") is None
