"""Attempts: every `golden test` (and the test stages of `golden run`) starts from no evidence. The
earlier attempt's evidence is moved to `attempts/<its id>/` before the new attempt writes anything,
and every evidence file the new one writes carries its id, so the gate can accept one attempt's
complete set only. A per-boot private key (`boot/*.key`) is never archived: the boot deletes it
when the VM stops, and after a `kill -9` of the driver the next attempt deletes it here.

    attempt_id = start(run)          # run.json's attempt.id; the old evidence is now in attempts/<old id>/
    run.attempt                      # the current attempt's id (None before the first)
"""

import datetime as dt
import os
import uuid

from pipeline.supply.attest import PROVENANCE_FILE, TEST_RESULT_FILE

ATTEMPTS_DIR = "attempts"
EXPECTED = {"junit.xml": "expected-tests.json", "junit-hygiene.xml": "expected-hygiene.json"}
# What one attempt writes (and what its gate and signatures are made from).
EVIDENCE = ("boot", "hygiene.json", "pytest-hygiene.log", "junit-hygiene.xml", "expected-hygiene.json",
            "test.json", "pytest.log", "junit.xml", "expected-tests.json", "exceptions.json",
            "junit-reboot.xml", "reboot.json", "gate.json", PROVENANCE_FILE, TEST_RESULT_FILE, "report.html")


def start(run):
    """A new attempt on `run`: the evidence of the one before moved aside, then a new id recorded."""
    old = (run.meta.get("attempt") or {}).get("id")
    present = [name for name in EVIDENCE if os.path.lexists(run.path(name))]
    for name in [*present, ATTEMPTS_DIR]:      # attempts/: those archived before keys were deleted here
        _delete_private_keys(run.path(name))
    if present:
        aside = run.path(ATTEMPTS_DIR, old or f"unrecorded-{uuid.uuid4()}")
        os.makedirs(aside, exist_ok=True)
        for name in present:
            os.replace(run.path(name), os.path.join(aside, name))
    attempt = {"id": str(uuid.uuid4()), "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "previous": old}
    run.update_meta(attempt=attempt)
    return attempt["id"]


def _delete_private_keys(path):
    """The per-boot private keys (`*.key`; their `.key.pub` halves stay) under an evidence directory."""
    if os.path.islink(path):
        return
    for directory, _, files in os.walk(path):
        for name in files:
            if name.endswith(".key"):
                os.unlink(os.path.join(directory, name))
