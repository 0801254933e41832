"""Fixtures the checks and acceptance tests ask for."""

import os

import pytest

from pipeline.checks import SUITE_USER
from pipeline.checks.plugin.collect import cis_mark
from pipeline.checks.plugin.session import STATE
from pipeline.paths import IMAGES_DIR


@pytest.fixture
def facts(host, request):
    """The facts gathered once per host for every control of the session."""
    state = request.config.stash[STATE]
    return state.facts_for(host)


@pytest.fixture
def baseline(request):
    return request.config.stash[STATE].baseline


@pytest.fixture
def control_values(request):
    """The baseline values of the control this test checks."""
    mark = cis_mark(request.node)
    return request.config.stash[STATE].baseline.values(mark.args[0]) if mark else {}


@pytest.fixture(scope="session")
def image_spec(request):
    """The image spec under test (--spec), for its agents, time servers and allowlists."""
    from pipeline.image.spec import ImageSpec
    path = request.config.option.golden_spec or os.path.join(IMAGES_DIR, "golden-linux.yaml")
    return ImageSpec.load(path, request.config.stash[STATE].baseline)


@pytest.fixture
def test_user():
    """The per-boot account the suite logs in with; checks of accounts exclude it by name."""
    return SUITE_USER
