"""Reading speculative flags strictly: never a value llama-server would refuse or misread.

Each table row says what llama-server (std::stoi / std::stof) does with the value:
"refuses" it (the server does not start), "misreads" it (takes a leading part, or a
form we do not take), or "reads" it exactly; the expected outcome was worked out by
hand from those functions. The last test checks the "refuses" column against the
real binary.
"""

from __future__ import annotations

import subprocess

import pytest
from helpers import LLAMA_SERVER, needs_llama

from halospec_tui.procs import tagged_env
from halospec_tui.specflags import (
    SpecFlagError,
    SpecFlags,
    k_from_args,
    p_min_from_args,
    read_spec_flags,
)

# value, what llama-server does, K read here (None: SpecFlagError), error text
N_MAX = [
    ("3", "reads", 3, ""),
    ("0", "reads", 0, ""),
    ("16", "reads", 16, ""),
    ("17", "reads", 17, ""),  # the range is the caller's business (the sim caps it)
    ("+4", "reads", 4, ""),
    ("010", "reads", 10, ""),  # base 10, as stoi reads it
    ("-0", "reads", 0, ""),
    ("2147483647", "reads", 2147483647, ""),
    ("abc", "refuses", None, "not a whole number"),
    ("", "refuses", None, "not a whole number"),
    ("４", "refuses", None, "not a whole number"),  # a full-width digit
    ("-5", "refuses", None, "invalid value"),
    ("-1", "refuses", None, "invalid value"),
    ("2147483648", "refuses", None, "out of range"),
    ("99999999999", "refuses", None, "out of range"),
    ("3.5", "misreads", None, "would read it as 3"),
    ("1e3", "misreads", None, "would read it as 1"),
    ("12abc", "misreads", None, "would read it as 12"),
    ("0x10", "misreads", None, "would read it as 0"),
    (" 12", "misreads", None, "would read it as 12"),  # whitespace: not as written
    ("12 ", "misreads", None, "would read it as 12"),
]

# value, what llama-server does, p_min read here (None: SpecFlagError), error text
P_MIN = [
    ("0", "reads", 0.0, ""),
    ("0.75", "reads", 0.75, ""),
    (".5", "reads", 0.5, ""),
    ("5e-1", "reads", 0.5, ""),
    ("1", "reads", 1.0, ""),
    ("2", "reads", 2.0, ""),  # read as written; p_min_from_args refuses the range
    ("-1", "reads", -1.0, ""),
    ("-0", "reads", 0.0, ""),
    ("1e-30", "reads", 1e-30, ""),  # within a float's normal range
    ("abc", "refuses", None, "not a plain decimal number"),
    ("", "refuses", None, "not a plain decimal number"),
    ("1e999", "refuses", None, "out of range"),
    ("1e-40", "refuses", None, "out of range"),  # below a float's normal range
    ("1e-38", "refuses", None, "out of range"),
    ("nan", "misreads", None, "not a plain decimal number"),
    ("inf", "misreads", None, "not a plain decimal number"),
    ("-inf", "misreads", None, "not a plain decimal number"),
    ("0x1p-1", "misreads", None, "not a plain decimal number"),  # a hex float: 0.5 to stof
    ("0.5abc", "misreads", None, "would read it as 0.5"),
    ("0,5", "misreads", None, "would read it as 0"),
]


@pytest.mark.parametrize("value,server,k,error", N_MAX, ids=[repr(r[0]) for r in N_MAX])
def test_draft_length_values(value, server, k, error):
    for flag in ("--spec-draft-n-max", "--draft-max", "--draft"):
        argv = ["llama-server", "-m", "t.gguf", flag, value]
        if k is None:
            with pytest.raises(SpecFlagError) as e:
                read_spec_flags(argv)
            assert e.value.flag == flag
            assert str(e.value).startswith(f"{flag} {value!r}: ") and error in str(e.value)
            assert k_from_args(argv) is None and k_from_args(argv, default=3) is None
        else:
            assert read_spec_flags(argv).n_max == k
            assert k_from_args(argv) == k


@pytest.mark.parametrize("value,server,p,error", P_MIN, ids=[repr(r[0]) for r in P_MIN])
def test_p_min_values(value, server, p, error):
    argv = ["--spec-type", "draft-simple", "--spec-draft-p-min", value]
    if p is None:
        with pytest.raises(SpecFlagError, match="^--spec-draft-p-min ") as e:
            read_spec_flags(argv)
        assert error in str(e.value)
        with pytest.raises(SpecFlagError):
            p_min_from_args(argv)
    else:
        assert read_spec_flags(argv).p_min == p
        if 0.0 <= p < 1.0:
            assert p_min_from_args(argv) == p
        else:
            with pytest.raises(SpecFlagError, match="outside 0..1"):
                p_min_from_args(argv)


def test_p_min_from_args_without_the_flag_is_0_and_old_spelling_reads():
    assert p_min_from_args("llama-server -m t.gguf") == 0.0
    assert p_min_from_args("--draft-max 4 --draft-p-min 0.25") == 0.25
    assert p_min_from_args("--spec-draft-p-min 0.5 --spec-draft-p-min 0.125") == 0.125


def test_the_other_length_flags_are_read_strictly_too():
    assert read_spec_flags("--spec-draft-n-min -1 --spec-draft-n-max 4").n_max == 4
    with pytest.raises(SpecFlagError, match=r"^--spec-draft-n-min '1\.5': .*read it as 1\)$"):
        read_spec_flags("--spec-draft-n-max 4 --spec-draft-n-min 1.5")


@pytest.mark.parametrize(
    "cmd,message",
    [
        ("--spec-draft-n-max=3", "--spec-draft-n-max=3: llama-server takes no --flag=value"),
        ("--draft-max=6", "--draft-max=6: llama-server takes no --flag=value"),
        ("--spec-draft-p-min=0", "--spec-draft-p-min=0: llama-server takes no --flag=value"),
        ("-m t.gguf --spec-draft-n-max", "--spec-draft-n-max: needs a value"),
        ("--spec-draft-n-max '3", "command line: cannot be split"),
        (["--spec-draft-n-max\t3"], "--spec-draft-n-max\t3: no such llama-server argument"),
        (["--spec-draft-n-max 3"], "--spec-draft-n-max 3: no such llama-server argument"),
    ],
)
def test_forms_llama_server_refuses(cmd, message):
    with pytest.raises(SpecFlagError) as e:
        read_spec_flags(cmd)
    assert str(e.value).startswith(message)
    assert k_from_args(cmd) is None


def test_underscores_and_a_list_are_read_as_llama_server_reads_them():
    # llama-server turns _ into - in a --flag's name; Lemonade's /health gives the
    # command as a list of arguments.
    assert read_spec_flags("--spec_draft_n_max 5 --spec_draft_p_min 0.5") == SpecFlags(
        5, 0.5, False, True
    )
    argv = ["/bin/llama-server", "-m", "a b.gguf", "--spec-type", "draft-simple",
            "--spec-draft-n-max", "6"]  # fmt: skip
    assert k_from_args(argv) == 6
    assert k_from_args(["llama-server", "-m", "t.gguf"], default=3) == 0
    assert k_from_args(["llama-server", "-md", "d.gguf"], default=3) == 3
    assert k_from_args(["llama-server", "--spec-type", "ngram-mod,none"]) == 0


def test_a_value_is_the_next_argument_whatever_it_looks_like():
    # llama-server takes the argument after the flag as its value, even one that
    # looks like a flag: stoi("--spec-type") fails, so the server refuses.
    with pytest.raises(SpecFlagError, match=r"^--spec-draft-n-max '--spec-type': "):
        read_spec_flags("--spec-draft-n-max --spec-type none")


# -- against the real binary ------------------------------------------------------------
@needs_llama[0]
@needs_llama[1]
def test_what_the_real_llama_server_refuses_is_refused_here():
    """Each value before `--version`: llama-server parses it, then prints its version
    and exits 0, or exits 1 on a value it refuses. Nothing loads, nothing listens."""
    binary = LLAMA_SERVER
    assert binary is not None
    seen = {}
    for flag, table in (("--spec-draft-n-max", N_MAX), ("--spec-draft-p-min", P_MIN)):
        for value, _server, _, _ in table:
            r = subprocess.run([binary, flag, value, "--version"], capture_output=True,
                               text=True, timeout=30, env=tagged_env())  # fmt: skip
            refused = f'error while handling argument "{flag}"' in r.stderr
            assert r.returncode == (1 if refused else 0), (flag, value, r.stderr[-300:])
            seen[(flag, value)] = "refuses" if refused else "takes"
    expected = {(f, v): "refuses" if s == "refuses" else "takes"
                for f, t in (("--spec-draft-n-max", N_MAX), ("--spec-draft-p-min", P_MIN))
                for v, s, _, _ in t}  # fmt: skip
    assert seen == expected
