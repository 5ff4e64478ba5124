"""Every error this program raises on purpose, under one base.

The tree:

    HalospecError                 bad input or a setup the user can fix: exit 2 in the CLI
    ├── UsageError                a command-line option (cli)
    ├── PlanError                 a plan or its customisation (plan)
    ├── ResultsError              a results CSV to write or read (results)
    ├── SetupError                finding the server, choosing the actuator (session)
    │   └── ServerUnreachable     the server does not answer, or never came up: exit 4
    ├── TemplateError             a --launch / --launch-nospec template (launch_template)
    ├── ActuatorError             setting K on the server (actuators, launched, llama_server)
    │   ├── ActuatorUnreachable   the server did not answer a reload: a transport error
    │   │   └── ServerStartError  a server the harness started never became healthy
    │   └── ActuatorInterrupted   the run stopped (or abandoned) mid-reload
    ├── SimStartError             the embedded server's process did not start (sim.process)
    ├── SimParamsError            an embedded-server option out of range (sim.process)
    └── FaultSpecError            an injected-fault spec (sim.faults)

Anything else that escapes is a bug and shows as one, with its traceback.
The classes live next to the code that raises them; this module holds only the base,
so it imports nothing and every module can import it.
"""

from __future__ import annotations


class HalospecError(Exception):
    """Base of the errors above: the CLI maps it to 'bad input', exit 2."""
