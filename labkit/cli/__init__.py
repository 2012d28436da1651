"""The ``labkit`` command: each subcommand lives in its own module, which parses its own arguments.

    labkit doctor      # versions, CPUs, memory limits, calibration state, problems with fixes
    labkit calibrate   # measure this machine so lk.device("local") predicts it
    labkit validate    # predict and measure the zoo models here; print the error of every prediction
    labkit build       # write labs/ from solutions/ (--check: fail if labs/ is stale)
    labkit grade       # grade submitted notebooks into a gradebook
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "doctor": ("labkit.cli.doctor", "check this machine and the install"),
    "calibrate": ("labkit.calibration.calibrate", "measure this machine as a device"),
    "validate": ("labkit.calibration.validate", "predict vs measure the zoo models here"),
    "build": ("labkit.grade.build", "generate labs/ from solutions/"),
    "grade": ("labkit.grade.batch", "grade submitted notebooks"),
}

def _usage() -> str:
    lines = ["usage: labkit COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'labkit COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from labkit import __version__

        print(f"labkit {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from labkit.args import unknown_name

        print(f"labkit: {unknown_name('command', name, COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.cli(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
