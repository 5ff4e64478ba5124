"""The speculative flags: written and read back in one place."""

import shlex

import pytest

from halospec_tui.specflags import (
    SpecSyntax,
    k_from_args,
    spec_args,
    spec_text,
    syntax_from_help,
    thread_args,
    threads_from_args,
    without_thread_flags,
)

NEW_HELP = """
--spec-type [none|draft-simple|draft-mtp|ngram-mod]   type of speculative decoding (default: none)
--spec-draft-n-max N    number of tokens to draft (default: 16)
"""
NEW_HELP_NO_NONE = """
--spec-type TYPE        draft-simple or eagle3
--spec-draft-n-max N    number of tokens to draft (default: 16)
"""
OLD_HELP = "--draft-max, --draft, --draft-n N   number of tokens to draft (default: 16)\n"


def test_syntax_from_help():
    assert syntax_from_help(NEW_HELP) == SpecSyntax("new", True)
    assert syntax_from_help(NEW_HELP_NO_NONE) == SpecSyntax("new", False)
    assert syntax_from_help(OLD_HELP) == SpecSyntax("old", False)
    assert syntax_from_help("--ctx-size N") is None


def test_spec_args_per_spelling_and_k0():
    assert spec_args(4) == ["--spec-type", "draft-simple", "--spec-draft-n-max", "4",
                            "--spec-draft-n-min", "0", "--spec-draft-p-min", "0"]  # fmt: skip
    assert spec_args(4, SpecSyntax("old", False)) == [
        "--draft-max", "4", "--draft-min", "0", "--draft-p-min", "0"
    ]  # fmt: skip
    assert spec_args(0) == ["--spec-type", "none"]
    assert spec_args(0, SpecSyntax("new", False)) == []
    assert spec_args(0, SpecSyntax("old", False)) == []
    assert spec_text(5) == (
        "--spec-type draft-simple --spec-draft-n-max 5 --spec-draft-n-min 0 --spec-draft-p-min 0"
    )
    with pytest.raises(ValueError):
        spec_args(-1)


@pytest.mark.parametrize("k", [0, 1, 3, 16])
@pytest.mark.parametrize("syntax", [SpecSyntax("new", True), SpecSyntax("new", False),
                                    SpecSyntax("old", False)])  # fmt: skip
def test_what_is_written_reads_back(k, syntax):
    cmd = "llama-server -m t.gguf " + " ".join(spec_args(k, syntax))
    assert k_from_args(cmd) == k


@pytest.mark.parametrize(
    "cmd,default,k",
    [
        ("llama-server -m a.gguf --spec-draft-n-max 5 --spec-draft-n-max 7", None, 7),
        ("llama-server -m a.gguf --draft 2", None, 2),
        ("llama-server -m a.gguf --draft-max=6", None, None),  # llama-server refuses --x=v
        ("llama-server -m a.gguf -md d.gguf --spec-type none", 3, 0),
        ("llama-server -m a.gguf --ctx-size 4096", None, 0),  # nothing can draft
        ("", 3, 0),
        ("llama-server -m a.gguf -md d.gguf", None, None),  # the binary's default
        ("llama-server -m a.gguf -md d.gguf", 3, 3),
        ("--spec-type draft-simple", 3, 3),
    ],
)
def test_k_from_args(cmd, default, k):
    assert k_from_args(cmd, default) == k


# -- threads ----------------------------------------------------------------------------
def test_thread_flags_are_written_for_target_and_draft():
    assert thread_args(1) == ["-t", "1", "-td", "1"]
    assert thread_args(12) == ["-t", "12", "-td", "12"]
    assert thread_args(None) == []
    with pytest.raises(ValueError):
        thread_args(0)


@pytest.mark.parametrize(
    "argv,kept",
    [
        (["-np", "1", "-c", "1024", "-t", "1", "-td", "1"], ["-np", "1", "-c", "1024"]),
        (["--threads", "4", "-fa", "--threads-draft", "2", "-c", "9"], ["-fa", "-c", "9"]),
        (["--spec-draft-threads", "3", "-tb", "2"], ["-tb", "2"]),  # -tb: batch threads, kept
        (["-c", "512"], ["-c", "512"]),
        (["-t"], []),  # a flag without its value goes too
        (["--temp", "0.1", "-td", "1", "-t", "2", "-t", "3"], ["--temp", "0.1"]),
    ],
)
def test_thread_flags_are_removed_with_their_values(argv, kept):
    assert without_thread_flags(argv) == kept


@pytest.mark.parametrize(
    "cmd,threads",
    [
        ("llama-server -m a.gguf -t 2 -td 2", 2),
        (["llama-server", "--threads", "3", "-td", "1"], 3),  # -td is the draft's, not read
        ("llama-server -t 1 -c 9 -t 4", 4),  # the last one
        ("llama-server -td 2 -c 9", None),
        ("llama-server -t x", None),
        ("llama-server -t", None),
        ("", None),
    ],
)
def test_the_thread_count_reads_back(cmd, threads):
    assert threads_from_args(cmd) == threads


@pytest.mark.parametrize("n", [1, 2, 7, 256])
def test_what_is_written_reads_back_as_the_same_thread_count(n):
    line = f"-np 1 -t 9 -td 9 {spec_text(4)} {shlex.join(thread_args(n))}"
    assert threads_from_args(line) == n
    assert threads_from_args(without_thread_flags(shlex.split(line)) + thread_args(n)) == n
    assert k_from_args(line) == 4  # the speculative flags read as before


def test_a_command_line_that_cannot_be_split_has_no_thread_count():
    assert threads_from_args("llama-server -t 2 --alias 'unclosed") is None
