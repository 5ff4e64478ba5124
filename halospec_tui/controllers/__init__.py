"""Draft-length controllers: the original threshold rule, a server model, a bandit.

`make_controller(name)` builds one by name: threshold (the original HaloSpec rule),
model (acceptance and cost per pass from the server's timings) and bandit (discounted
UCB over K on measured tokens/s).
"""

from __future__ import annotations

from halospec_tui.controllers.bandit import BanditController
from halospec_tui.controllers.base import (
    DEFAULT_HIGH_MS,
    DEFAULT_LOW_MS,
    Controller,
    ControllerView,
    Observation,
    Thresholds,
)
from halospec_tui.controllers.model import ModelController
from halospec_tui.controllers.threshold import (
    EMA_ALPHA,
    K_MAX,
    K_MIN,
    K_START,
    ThresholdController,
    ema_update,
    threshold_rule,
    thresholds_from_warmup,
)

CONTROLLERS = {
    "threshold": ThresholdController,
    "model": ModelController,
    "bandit": BanditController,
}


def make_controller(name: str) -> Controller:
    try:
        return CONTROLLERS[name]()  # type: ignore[no-any-return]
    except KeyError:
        raise ValueError(
            f"unknown controller {name!r} (choose from {', '.join(CONTROLLERS)})"
        ) from None


__all__ = [
    "CONTROLLERS",
    "DEFAULT_HIGH_MS",
    "DEFAULT_LOW_MS",
    "EMA_ALPHA",
    "K_MAX",
    "K_MIN",
    "K_START",
    "BanditController",
    "Controller",
    "ControllerView",
    "ModelController",
    "Observation",
    "ThresholdController",
    "Thresholds",
    "ema_update",
    "make_controller",
    "threshold_rule",
    "thresholds_from_warmup",
]
