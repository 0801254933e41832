"""Where things live in the repository: one definition for every module and test.

    from pipeline.paths import ROOT, CHECKS_DIR
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS_DIR = os.path.join(ROOT, "cis_checks")            # the CIS baseline as tests
ACCEPTANCE_DIR = os.path.join(ROOT, "acceptance")        # functional tests of a booted candidate
IMAGES_DIR = os.path.join(ROOT, "images")                # image specs
PACKER_DIR = os.path.join(ROOT, "packer")                # templates and provisioning scripts
REPORTS_DIR = os.path.join(ROOT, "reports")              # report templates
POLICIES_DIR = os.path.join(ROOT, "policies")            # rollout and lifecycle policies
