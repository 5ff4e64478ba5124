"""What the embedded server does as Lemonade (v10.x) does it: how `llamacpp_args` is
split, which flags it keeps for itself, and the figures /api/v1/stats gives.

Read from Lemonade's server (v10.10): `utils::parse_custom_args` splits the args,
`validate_custom_args` refuses its reserved flags, `Router::record_telemetry_for_model`,
`Server::handle_chat_completions` and `StreamingProxy::forward_sse_stream` keep the
last request's figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
@dataclass
class Stats:
    """GET /api/v1/stats: the last request's figures, then running totals (v10.7+).

    Lemonade's docs list the first five; its server also sends the four totals."""

    time_to_first_token: float = 0.0  # s
    tokens_per_second: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_tokens: int = 0  # including cached tokens
    request_count_total: int = 0
    input_tokens_total: int = 0
    output_tokens_total: int = 0
    prompt_tokens_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def record(self, answer: dict[str, Any], streamed: bool, ttft_s: float, total_s: float) -> None:
        """Take one answered request, read from its final document as Lemonade reads
        it: llama.cpp's `timings` first, else `usage`. A streamed answer without
        timings gets the time to its first chunk (`ttft_s`, measured) and tokens/s over
        the rest (`total_s`); a whole answer without timings has neither (0)."""
        timings = answer.get("timings")
        usage = answer.get("usage")
        if not streamed and not isinstance(timings, dict) and not isinstance(usage, dict):
            return  # Lemonade records nothing for such an answer
        n_in = n_out = 0
        ttft = tps = 0.0
        if isinstance(usage, dict):
            n_in = int(usage.get("prompt_tokens", 0))
            n_out = int(usage.get("completion_tokens", 0))
        if isinstance(timings, dict):
            n_in = int(timings.get("prompt_n", n_in))
            n_out = int(timings.get("predicted_n", n_out))
            ttft = float(timings.get("prompt_ms", 0.0)) / 1000.0
            tps = float(timings.get("predicted_per_second", 0.0))
        if streamed:
            ttft = ttft if ttft > 0 else ttft_s
            if tps <= 0 and n_out > 0 and total_s > ttft:
                tps = n_out / (total_s - ttft)
        self.time_to_first_token, self.tokens_per_second = ttft, tps
        self.input_tokens, self.output_tokens = n_in, n_out
        self.request_count_total += 1
        self.input_tokens_total += max(n_in, 0)
        self.output_tokens_total += max(n_out, 0)
        # A streamed answer's prompt_tokens is its input_tokens; a whole answer's is
        # usage.prompt_tokens, left as it was when the answer has no usage.
        prompt = n_in if streamed else (usage or {}).get("prompt_tokens")
        if isinstance(prompt, int):
            self.prompt_tokens = prompt
            self.prompt_tokens_total += max(prompt, 0)
