"""Check files: `cis_checks/<section>-<topic>.yaml`, one row per data-shaped control.

A row names the CIS id and a violation scenario; what to expect comes from the baseline entry of
that id (cis_checks/baseline.yaml), so a value is written once:

    services: [sshd]              # what the rows of this file touch (default for each row)
    checks:
      - id: "5.1.16"
        violate: sshd_option MaxAuthTries "$(violating maxauthtries)"   # cis_checks/scenarios.sh
"""

import os
import re
from dataclasses import dataclass

from pipeline import yamlsrc
from pipeline.checks.kinds import EVALUATED

CHECK_FILE_RE = re.compile(r"^\d[\w.-]*\.ya?ml$")


@dataclass(frozen=True)
class Row:
    id: str
    violate: str
    services: tuple
    path: str
    line: int


def is_check_file(path):
    return CHECK_FILE_RE.match(os.path.basename(str(path))) is not None


def load(path, catalogue, baseline):
    doc = yamlsrc.load(path)
    top = yamlsrc.Fields(doc, doc.data)
    default_services = top.get("services", list, default=[])
    rows_raw = top.get("checks", list, required=True)
    top.done()
    rows = []
    for i, entry in enumerate(rows_raw):
        f = yamlsrc.Fields(doc, entry, f"checks[{i}]")
        cis_id = f.get("id", str, required=True)
        if cis_id not in catalogue:
            raise f.error("id", f"unknown CIS id {cis_id!r} (not in the catalogue)")
        if catalogue[cis_id].assessment == "manual":
            raise f.error("id", f"{cis_id} is a manual recommendation; it is listed, not checked")
        if not set(baseline.values(cis_id)) & EVALUATED:
            raise f.error("id", f"{os.path.basename(baseline.path)} has no expected values for {cis_id}; "
                                "add them under `controls`, or write the control as a Python test")
        violate = f.get("violate", str, required=True,
                        check=lambda v: None if v.strip() else "must be a non-empty shell script")
        services = f.get("services", list, default=default_services)
        f.done()
        rows.append(Row(cis_id, violate, tuple(services), str(path), doc.line(rows_raw, i)))
    return rows
