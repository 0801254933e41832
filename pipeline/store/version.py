"""The version contract: `golden-<name>-YYYY.MM.DD+N`, N counting that day's builds of <name>.

    v = Version.parse("golden-linux-2026.11.26+3")
    v.name, v.day, v.build          # ('linux', datetime.date(2026, 11, 26), 3)
    sorted(versions, key=Version.sort_key)   # ordered as PEP 440 orders 2026.11.26+3
"""

import datetime as dt
import re
from dataclasses import dataclass

from packaging.version import Version as Pep440

from pipeline.errors import GoldenError

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_VERSION_RE = re.compile(
    r"^golden-(?P<name>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-(?P<y>\d{4})\.(?P<m>\d{2})\.(?P<d>\d{2})\+(?P<n>[1-9]\d*)$")


@dataclass(frozen=True)
class Version:
    name: str
    day: dt.date
    build: int

    def __str__(self):
        return f"golden-{self.name}-{self.day:%Y.%m.%d}+{self.build}"

    @classmethod
    def parse(cls, text):
        m = _VERSION_RE.match(text or "")
        if not m:
            raise GoldenError(f"{text!r} is not a version of the form golden-<name>-YYYY.MM.DD+N")
        try:
            day = dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
        except ValueError as exc:
            raise GoldenError(f"{text!r} has an impossible date: {exc}") from None
        return cls(m["name"], day, int(m["n"]))

    @staticmethod
    def is_version(text):
        try:
            Version.parse(text)
        except GoldenError:
            return False
        return True

    def pep440(self):
        return Pep440(f"{self.day.year}.{self.day.month}.{self.day.day}+{self.build}")

    @staticmethod
    def sort_key(text):
        v = Version.parse(text) if isinstance(text, str) else text
        return (v.name, v.pep440())


def next_build(name, day, taken):
    """The next N for `name` on `day`, given the version strings already taken (runs and store)."""
    highest = 0
    for text in taken:
        if not Version.is_version(text):
            continue
        v = Version.parse(text)
        if v.name == name and v.day == day:
            highest = max(highest, v.build)
    return Version(name, day, highest + 1)


def utc_today():
    return dt.datetime.now(dt.timezone.utc).date()
