"""Debian mirrors, read from the build host's apt sources at run time (never written in the repo).

    for entry in host_sources("bookworm"):
        print(entry.one_line())     # "deb <uri> bookworm main"
"""

import glob
import os
from dataclasses import dataclass

from pipeline.errors import GoldenError

APT_DIR = "/etc/apt"


@dataclass(frozen=True)
class Source:
    uri: str
    suite: str
    components: tuple

    def one_line(self):
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def _parse_one_line(text):
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):  # options such as [signed-by=...]
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 3:
            yield Source(words[0], words[1], tuple(words[2:]))


def _parse_deb822(text):
    for stanza in text.split("\n\n"):
        fields, key = {}, None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield Source(uri, suite, tuple(fields.get("components", "main").split()))


def read_sources(apt_dir=APT_DIR):
    """Every enabled `deb` source of the host, in apt's reading order."""
    out = []
    main = os.path.join(apt_dir, "sources.list")
    if os.path.exists(main):
        with open(main, encoding="utf-8") as fh:
            out.extend(_parse_one_line(fh.read()))
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*"))):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if path.endswith(".list"):
            out.extend(_parse_one_line(text))
        elif path.endswith(".sources"):
            out.extend(_parse_deb822(text))
    return out


def host_sources(suite, apt_dir=APT_DIR):
    """The host's sources for a Debian suite and its -updates/-security companions."""
    wanted = [s for s in read_sources(apt_dir) if s.suite == suite or s.suite.startswith(suite + "-")]
    if not any(s.suite == suite for s in wanted):
        raise GoldenError(
            f"no apt source for suite {suite!r} on this host; add one to {apt_dir}/sources.list.d "
            "or name mirrors in the image spec (base.mirrors)", file=apt_dir)
    return wanted


def parse_lines(lines):
    """Mirrors given by the user as one-line `deb URI SUITE COMPONENT...` entries."""
    return list(_parse_one_line("\n".join(lines)))
