"""A step of c requests sent at once, from the tool's own clients.

A condition's concurrency level c (conditions.py) makes each step of a block send c
requests together, each with its own prompt, at the same K. Each request is a row of
its own (its latency, its tokens: that client's tokens/s), and every row of the step
carries the step's wall time, first send to last answer, so the race reads the
aggregate: all tokens over the wall time (race_rows.blocks_by_round).

The requests run in threads over the one client (its connection pool, its total
deadline per request, its abandon switch reach every thread). Drafting figures come
from each answer's own timings: a /metrics read around the step could not tell the
requests apart, so a step without timings carries none.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from halospec_tui.client import Reply
from halospec_tui.controllers import Controller
from halospec_tui.events import StepRecord
from halospec_tui.plan import ArmSpec
from halospec_tui.steps import StepPlace, Steps, Stopped


def client_prompt_index(first: int, step_in_block: int, concurrency: int, client: int) -> int:
    """The run's n-th prompt for client `client` (1-based) of a block's step (1-based):
    distinct for every client and step of a block, the same for every arm in a round."""
    return first + (step_in_block - 1) * concurrency + client - 1


def send_together(steps: Steps, prompts: list[str], k: int, p_min: float) -> tuple[list[Reply], int]:
    """Send every prompt at once, one thread each; (replies in order, wall time ms)."""
    replies: list[Reply | None] = [None] * len(prompts)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            replies[i] = steps.request(prompts[i], k, p_min)
        except BaseException as e:  # raised again on the run's thread
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,), name=f"halospec-client-{i + 1}", daemon=True)
               for i in range(len(prompts))]  # fmt: skip
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # each request ends by its total deadline (--timeout), or when abandoned
    wall_ms = int((time.perf_counter() - start) * 1000)
    if errors:
        raise errors[0]
    return [r for r in replies if r is not None], wall_ms


def measure_together(
    steps: Steps, spec: ArmSpec, controller: Controller | None, at: StepPlace
) -> list[StepRecord]:
    """One step of the condition's c requests at the arm's K: c rows, written and told.
    One request (c = 1) is a plain step (`Steps.measure`)."""
    c = at.condition.concurrency if at.condition is not None else 1
    if c == 1 or at.prompt_index is None:
        return [steps.measure(spec, controller, replace(at, client=1))]
    index = [at.prompt_index + i for i in range(c)]
    prompts = [steps.prompt(i) for i in index]
    k = controller.next_k(prompts[0][2]) if controller is not None else spec.warmup_k
    act, not_set = steps.set_k(k, spec.p_min, spec.threads)
    cpu: tuple[float | None, float | None] = (None, None)
    wall: int | None = None
    if not_set is not None:
        replies = [steps.not_sent(not_set, act)] * c
    else:
        steps.telemetry.sample()  # the CPU window over the whole step
        replies, wall_ms = send_together(steps, [p[1] for p in prompts], k, spec.p_min)
        cpu, wall = steps.telemetry.sample(), wall_ms
        if steps.control.stopping and not all(r.success for r in replies):
            raise Stopped()  # an abandoned request is not a measurement
    out = []
    for i, (reply, (pid, _, cls)) in enumerate(zip(replies, prompts, strict=True)):
        place = replace(at, client=i + 1, step_ms=wall, prompt_index=index[i])
        out.append(steps.keep(spec, controller, place, k, reply, (pid, cls),
                              act if i == 0 else replace(act, reload_ms=None), cpu, False))  # fmt: skip
    return out
