"""The original's schedule: each arm in turn, its warmup then every measured step.

Load (`--load`) starts at the plan's load step of every arm (or, as the original, of
the adaptive arm alone), and an arm ends only once its burners have: load never
spills into the next arm's warmup.
"""

from __future__ import annotations

from halospec_tui.events import ArmStarted
from halospec_tui.plan import ArmSpec
from halospec_tui.steps import Skipped, StepPlace, Steps, Stopped


def run_sequential(steps: Steps, load_enabled: bool, load_arms: str) -> None:
    for index, spec in enumerate(steps.plan.arms):
        try:
            _run_arm(steps, index, spec, load_enabled and (load_arms == "all" or spec.adaptive))
        except Skipped:
            steps.log("info", f"skipped the rest of {spec.name}")
            steps.finish_arm(spec, skipped=True)
        finally:
            steps.control.skip_event.clear()
        if steps.control.stopping:
            raise Stopped()


def _run_arm(steps: Steps, index: int, spec: ArmSpec, load_here: bool) -> None:
    plan = steps.plan
    steps.sink.emit(
        ArmStarted(spec.name, index, len(plan.arms), spec.warmup_steps, spec.measured_steps)
    )
    steps.load_seen = False
    steps.set_phase(spec.name, 0, "load" if steps.load.active else "steady")
    controller = steps.controller_for(spec)
    steps.pending = steps.actuate(spec.warmup_k, spec.p_min, spec.threads)
    steps.warmup(spec, controller)
    for step in range(1, spec.measured_steps + 1):
        steps.before_request()
        if load_here and step == plan.load_step and not steps.load.active:
            steps.start_load(f"{spec.name} step {step}")
        if steps.load.active:
            steps.load_seen = True
        steps.measure(spec, controller, StepPlace(step, left=spec.measured_steps - step))
        steps.control.sleep(plan.cooldown_s)
    while steps.load.active and load_here:
        steps.control.sleep(0.1)
    if not steps.load.active:
        steps.announce_load(False, "burners finished")
    steps.finish_arm(spec)
