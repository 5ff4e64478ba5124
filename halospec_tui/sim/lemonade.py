"""What the embedded server does as Lemonade (v10.x) does it: how `llamacpp_args` is
split and which flags it keeps for itself.

Read from Lemonade's server (v10.10): `utils::parse_custom_args` splits the args,
`validate_custom_args` refuses its reserved flags.
"""

from __future__ import annotations

# The draft model is registered with the model (since v10.8.1), never passed.
DRAFT_MODEL_FLAGS = frozenset({"-md", "--model-draft", "--spec-draft-model"})


def split_llamacpp_args(text: str) -> list[str]:
    """Lemonade's split: on spaces only, '...' and "..." group (quotes dropped), no
    escapes. A tab stays inside its argument, as llama-server then receives it."""
    out: list[str] = []
    current = ""
    quote = ""
    for c in text:
        if not quote and c in "\"'":
            quote = c
        elif quote and c == quote:
            quote = ""
        elif not quote and c == " ":
            if current:
                out.append(current)
            current = ""
        else:
            current += c
    if current:
        out.append(current)
    return out


def reserved_flag(tokens: list[str]) -> str | None:
    """The first argument Lemonade keeps for itself (a `--flag=value` counts), if any."""
    for t in tokens:
        if t.startswith("-") and t.partition("=")[0] in DRAFT_MODEL_FLAGS:
            return t.partition("=")[0]
    return None
