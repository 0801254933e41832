import datetime as dt

import pytest

from pipeline.errors import GoldenError
from pipeline.store.version import Version, next_build


def test_round_trip():
    v = Version.parse("golden-linux-2026.11.26+3")
    assert (v.name, v.day, v.build) == ("linux", dt.date(2026, 11, 26), 3)
    assert str(v) == "golden-linux-2026.11.26+3"


def test_names_with_hyphens():
    assert Version.parse("golden-web-front-2026.01.02+1").name == "web-front"


@pytest.mark.parametrize("bad", ["golden-linux-2026.11.26", "golden-linux-2026.11.26+0", "golden-Linux-2026.11.26+1",
                                 "linux-2026.11.26+1", "golden-linux-2026.13.01+1", "golden-linux-26.11.26+1", ""])
def test_rejects_malformed(bad):
    with pytest.raises(GoldenError):
        Version.parse(bad)


def test_ordering_is_pep440_with_numeric_build_numbers():
    versions = ["golden-linux-2026.11.26+10", "golden-linux-2026.11.26+2", "golden-linux-2025.12.31+7",
                "golden-linux-2026.01.05+1"]
    assert sorted(versions, key=Version.sort_key) == [
        "golden-linux-2025.12.31+7", "golden-linux-2026.01.05+1", "golden-linux-2026.11.26+2",
        "golden-linux-2026.11.26+10"]


def test_next_build_counts_per_name_and_day():
    day = dt.date(2026, 11, 26)
    taken = ["golden-linux-2026.11.26+1", "golden-linux-2026.11.26+4", "golden-linux-2026.11.25+9",
             "golden-bastion-2026.11.26+7", "not-a-version"]
    assert str(next_build("linux", day, taken)) == "golden-linux-2026.11.26+5"
    assert str(next_build("linux", dt.date(2026, 11, 27), taken)) == "golden-linux-2026.11.27+1"
    assert str(next_build("bastion", day, taken)) == "golden-bastion-2026.11.26+8"
