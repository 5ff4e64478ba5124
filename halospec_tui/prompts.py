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


# Prompts by nature, for workloads that move the best K. On real draft/target pairs,
# structured, repetitive text (lists, code, counting) is drafted well and open-ended
# creative prose poorly; the embedded server's acceptance follows the same words.
EXTRA: tuple[str, ...] = (
    "Count from 1 to 30, separated by commas.",
    "List the days of the week and the months of the year, separated by commas.",
    "Write a Python function that reverses a list in place.",
    "Write a short story opening about a lighthouse keeper who hears music.",
    "Write a poem about autumn rain on a city street.",
)
ALL_PROMPTS: tuple[str, ...] = POOL + EXTRA
STRUCTURED: tuple[int, ...] = (1, 2, 5, 8, 13, 16, 17, 18)  # ids in ALL_PROMPTS
OPEN: tuple[int, ...] = (3, 6, 10, 11, 14, 15, 19, 20)
WORKLOADS = ("steady", "shift")


def prompt_class(prompt_id: int) -> str:
    if prompt_id in STRUCTURED:
        return "structured"
    if prompt_id in OPEN:
        return "open"
    return "neutral"


def workload_prompt(
    index: int, prompts: str, workload: str = "steady", shift_every: int = 8
) -> tuple[int, str, str]:
    """The n-th prompt of a run (0-based): (id, text, class).

    steady: the original prompt, or the pool rotated. shift: `shift_every` structured
    prompts, then as many open ones, and so on; every arm meets the same sequence
    because the index is the run's prompt counter, not the arm's.
    """
    if workload == "shift":
        n = max(shift_every, 1)
        ids = STRUCTURED if (index // n) % 2 == 0 else OPEN
        pid = ids[index % len(ids)]
        return pid, ALL_PROMPTS[pid], prompt_class(pid)
    pid, text = prompt_for(index, prompts)
    return pid, text, prompt_class(pid) if prompts == "pool" else "neutral"
