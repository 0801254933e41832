"""The `golden` command. Run `golden --help`, or `golden COMMAND --help` for one command.

Commands live in one module per group, as the README's table groups them; each module's
`register(sub, parents)` adds its subcommands.

Exit codes: 0 success; 1 the candidate failed (tests or gate); 2 bad input or a stage error;
130 interrupted.
"""

import argparse
import signal
import sys

from pipeline import __version__
from pipeline.cli import candidate, checks, common, fleet, kpi, release, store, supply
from pipeline.errors import GoldenError

GROUPS = (candidate, supply, store, release, fleet, kpi, checks)


def build_parser():
    p = argparse.ArgumentParser(prog="golden", description="Golden-image pipeline: build, boot, test, gate, publish.")
    p.add_argument("--version", action="version", version=f"golden {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = common.parents()
    for group in GROUPS:
        group.register(sub, parents)
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)    # unwinds context managers: VMs stop, staging is removed


def stop_on_signals():
    """SIGINT and SIGTERM both interrupt (exit 130, stages recorded as interrupted). SIGINT is set
    explicitly: a shell starts background jobs of a script with it ignored, and that is inherited."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)


def main(argv=None):
    args = build_parser().parse_args(argv)
    stop_on_signals()
    try:
        return args.func(args) or 0
    except GoldenError as exc:
        print(f"golden: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"golden: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:      # output piped into head and the like
        sys.stderr.close()
        return 0
