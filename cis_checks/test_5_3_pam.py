"""CIS 5.3.1: the PAM packages, installed and no older than the version CIS audits for."""

from debian.debian_support import Version

from pipeline.checks.authoring import control, findings_for, require


def _version_findings(facts, control_values):
    floor = control_values["params"]["min_version"]
    findings = findings_for(control_values, facts)
    for name in control_values["packages_present"]:
        installed = facts.packages.get(name)
        if installed is not None and Version(installed) < Version(floor):
            findings.append(f"package {name} is {installed}, older than {floor}")
    return findings


@control("5.3.1.1", violate="dpkg_status_version libpam-runtime 1.5.2-5")
def test_pam_runtime_is_current(facts, control_values):
    """libpam-runtime (pam-auth-update and the stacks) is installed at the baseline's version or later."""
    require(_version_findings(facts, control_values))


@control("5.3.1.2", violate="dpkg_status_version libpam-modules 1.5.2-5")
def test_pam_modules_are_current(facts, control_values):
    """libpam-modules (pam_unix, pam_faillock, pam_pwhistory) is at the baseline's version or later."""
    require(_version_findings(facts, control_values))
