"""Prompts: the seed's single prompt, and a pool of varied prompts rotated per step."""

from __future__ import annotations

ORIGINAL_PROMPT = (
    "Explain speculative decoding in exactly ONE sentence. "
    "Start immediately with the definition (no preface)."
)

# Varied in topic and shape (prose, lists, code, arithmetic) so that drafting is
# easy on some and hard on others, as with real traffic.
POOL: tuple[str, ...] = (
    ORIGINAL_PROMPT,
    "List five prime numbers greater than 100, separated by commas.",
    "Write a Python function that returns the nth Fibonacci number iteratively.",
    "Summarise the water cycle for a ten-year-old in three sentences.",
    "Translate 'the quick brown fox jumps over the lazy dog' into French.",
    "What is 17 multiplied by 23? Show the steps.",
    "Give a haiku about a server room at night.",
    "Explain the difference between TCP and UDP in two sentences.",
    "Write a SQL query that counts orders per customer in a table named orders.",
    "Name the planets of the solar system in order from the sun.",
    "Describe how a hash map handles collisions.",
    "Write a limerick about a cat who learns to code.",
    "What are the main causes of inflation? Answer briefly.",
    'Convert the JSON {"a": 1, "b": [2, 3]} into YAML.',
    "Explain why the sky is blue without using the word 'scattering'.",
    "Write a short apology email for missing a meeting.",
)


def prompt_for(step_index: int, prompts: str) -> tuple[int, str]:
    """Prompt for the n-th request of a run (0-based): (pool index, text)."""
    if prompts == "original":
        return 0, ORIGINAL_PROMPT
    i = step_index % len(POOL)
    return i, POOL[i]
