"""1.4 Bootloader: the configuration GRUB reads at boot (/boot/grub/grub.cfg)."""

import re

from pipeline.checks.authoring import control, require


def grub_password_findings(grub_cfg):
    """Findings on grub.cfg's superusers: at least one, each with a PBKDF2 password, none in clear."""
    superusers, hashed, findings = [], set(), []
    for line in grub_cfg.splitlines():
        words = line.split()
        if words[:1] == ["set"] and len(words) > 1 and words[1].startswith("superusers="):
            superusers = re.split(r"[\s,;|]+", words[1].partition("=")[2].strip("\"'").strip())
        elif words[:1] == ["password_pbkdf2"] and len(words) == 3 and words[2].startswith("grub.pbkdf2.sha512."):
            hashed.add(words[1])
        elif words[:1] == ["password"]:
            findings.append(f"GRUB user {words[1] if len(words) > 1 else '?'} has a clear-text password")
    superusers = [u for u in superusers if u]
    if not superusers:
        findings.append("grub.cfg sets no superusers: anyone at the console can edit boot entries")
    findings += [f"GRUB superuser {u} has no PBKDF2 password (password_pbkdf2)" for u in superusers if u not in hashed]
    return findings


@control("1.4.1", violate="chmod -x /etc/grub.d/01_golden-password && "
                         "sed -i '/^set superusers=/d; /^password_pbkdf2 /d' /boot/grub/grub.cfg",
         needs=["grub_cfg"], services=["boot"])
def test_bootloader_password(facts):
    """Editing boot entries or opening the GRUB shell needs a superuser with a PBKDF2-hashed password."""
    require(grub_password_findings(facts.raw("grub_cfg")))
