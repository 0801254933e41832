"""What can be known wrong before a run directory exists: tools, the spec's time servers, the
exception files, the base image. A preflight failure is bad input (exit 2) and leaves nothing behind.

    skipped = preflight(spec, cache_dir)      # {cis id: exception id}: controls the hardening leaves alone
"""

from pipeline.checks.baseline import Baseline
from pipeline.checks.catalogue import Catalogue
from pipeline.checks.exceptions import covering, utc_today
from pipeline.errors import GoldenError
from pipeline.evidence.suite import load_exceptions
from pipeline.image.base import preflight as base_preflight
from pipeline.util import require_tool

TOOLS = (("packer", "packer"), ("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"),
         ("xorriso", "xorriso"))


def preflight(spec, cache_dir, exception_paths=None, store=None):
    """Everything that can be known wrong before a run directory exists: tools, the base image,
    exception files. Returns the exceptions in the image's scope, keyed by the controls they cover."""
    for tool, package in TOOLS:
        require_tool(tool, package)
    _authorized_time_servers(spec, Baseline.load())
    today = utc_today()
    _, relevant = load_exceptions(spec, exception_paths, today)
    _no_expired_exceptions(relevant, spec, today)
    base_preflight(spec.base, cache_dir, store)
    return skipped_controls(relevant, spec, today)


def _no_expired_exceptions(relevant, spec, today):
    """An expired exception in the image's scope would fail the gate after a full build: say so now."""
    for exc in relevant:
        if exc.expired(today):
            raise GoldenError(f"exception {exc.id} (owner {exc.owner}) expired on {exc.expires} and covers image "
                              f"{spec.name} (role {spec.role}); renew it with its owner or remove it",
                              file=exc.file, line=exc.line, field="expires")


def _authorized_time_servers(spec, baseline):
    """A spec's time servers must be among the baseline's authorized ones (CIS 2.3.3.1), or the
    image would fail its gate after a full build: say so now."""
    authorized = baseline.values("2.3.3.1").get("params", {}).get("servers")
    if not authorized or not baseline.applies("2.3.3.1", spec.role, spec.level):
        return
    authorized = authorized if isinstance(authorized, list) else str(authorized).split()
    stray = [s for s in spec.time_servers if s not in authorized]
    if stray:
        raise GoldenError(f"time server(s) {', '.join(stray)} are not authorized by the baseline "
                          f"(CIS 2.3.3.1: {', '.join(authorized)})", file=spec.path, field="time_servers")


def skipped_controls(relevant, spec, as_of):
    """Controls the hardening leaves alone: {cis id: exception id}; an expired exception skips nothing."""
    out = {}
    for rec in Catalogue.load():
        exc = covering(relevant, rec.id, spec.role, spec.name, as_of)
        if exc:
            out[rec.id] = exc.id
    return out
