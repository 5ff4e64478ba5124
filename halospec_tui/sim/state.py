"""What the embedded server's handlers share: the loaded model (K, p_min, the
llamacpp_args that set them, loaded or not), the one decoding slot, the counters
behind /metrics and the figures behind /stats, and what /health shows of them."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from halospec_tui import __version__
from halospec_tui.sim.faults import FaultSpec, parse_faults
from halospec_tui.sim.lemonade import Stats
from halospec_tui.sim.physics import Engine, SimParams, reload_pause_ms
from halospec_tui.specflags import NO_SPECULATION, spec_text

CHECKPOINT = "halospec-sim"


class SimState:
    """Everything the handlers share; guarded by locks."""

    def __init__(self, params: SimParams) -> None:
        self.params = params
        self.engine = Engine(params)
        self.k = params.draft_n_max
        self.p_min = 0.0  # --spec-draft-p-min of the last load
        # The model's own options, as Lemonade keeps them for a model it launched: a
        # load with these (or the auto-load after /unload) gives the launch K again.
        self.launch_args = spec_text(params.draft_n_max)
        self.llamacpp_args = self.launch_args
        self.faults: FaultSpec = parse_faults(params.fault)
        self.fault_rng = np.random.default_rng(params.seed + 7)
        self.slot = threading.Lock()
        self.meta = threading.Lock()
        self.requests = 0
        self.drafted_total = 0
        self.accepted_total = 0
        self.tokens_total = 0
        self.in_flight = 0  # chat requests being answered or waiting for the slot
        self.most_in_flight = 0  # the most at once (tests check a client's concurrency)
        self.last_prompt: str | None = None
        self.loaded = True  # /unload frees the model; a chat request loads it again
        self.stats = Stats()  # /stats: the last request's figures (under meta)

    def load(self, k: int, p_min: float, args: str) -> None:
        """(Re)load the model: the reload's pause, an empty prompt cache. Under the slot."""
        time.sleep(reload_pause_ms(self.params) / 1000.0)
        self.k, self.p_min, self.llamacpp_args = k, p_min, args
        self.last_prompt = None
        self.loaded = True

    def unload(self) -> None:
        """Free the model (under the slot, so after the request in flight)."""
        self.loaded = False
        self.last_prompt = None

    def launch_command(self) -> str:
        """What Lemonade would show: K = 0 runs without a draft model, `--spec-type none`."""
        draft = " -md sim-draft.gguf" if self.k != NO_SPECULATION else ""
        return f"llama-server -m sim-target.gguf{draft} {spec_text(self.k, p_min=self.p_min)}"

    def health(self) -> dict[str, Any]:
        """Lemonade's: after /unload, no model (`model_loaded` null, an empty list)."""
        p = self.params
        models = [{"model_name": p.model, "checkpoint": CHECKPOINT, "type": "llm", "device": "cpu",
                   "recipe": "llamacpp", "recipe_options": {"llamacpp_args": self.llamacpp_args},
                   "launch_command": self.launch_command()}]  # fmt: skip
        return {
            "status": "ok",
            "version": f"sim-{__version__}",
            "model_loaded": p.model if self.loaded else None,
            "all_models_loaded": models if self.loaded else [],
            "sim": {
                **p.to_dict(),
                "loaded": self.loaded,
                "draft_n_max": self.k,
                "fault": str(self.faults),
                "unit_ms": self.engine.unit_ms,
                "requests_served": self.requests,
            },
        }
