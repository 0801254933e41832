import datetime as dt
import hashlib
import http.server
import json
import os
import shutil
import threading
import zipfile

import pytest
from debian.debian_support import Version

from pipeline.errors import GoldenError
from pipeline.evidence.rundir import Run
from pipeline.store.store import Store
from pipeline.supply.feeds import load_feeds
from pipeline.supply.sbom import sbom_from_root, validate_sbom
from pipeline.supply.scan import (
    affected_images,
    load_policy,
    osv_finding,
    rows,
    scan,
    write_scan,
)

from .imagefixtures import FEEDS, make_root

NOW = dt.datetime(2099, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
VERSION = "golden-linux-2099.03.01+1"
TRACKER = os.path.join(FEEDS, "tracker.json")
OSV = os.path.join(FEEDS, "osv")


@pytest.fixture
def sbom(tmp_path):
    return sbom_from_root(make_root(str(tmp_path)), name="linux", version=VERSION, sha256="cd" * 32, now=NOW)


@pytest.fixture
def feeds(tmp_path):
    return load_feeds({"debian-tracker": TRACKER, "osv": OSV}, str(tmp_path / "cache"), now=NOW)


def _policy(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(str(path), now=NOW)


def _by_id(result):
    return {f["id"]: f for f in result.findings}


# ---------------------------------------------------------------- dpkg ordering


@pytest.mark.parametrize("older,newer", [
    ("2.0", "1:1.0"),                                   # an epoch beats any upstream version
    ("1.0~rc1", "1.0"),                                 # ~ sorts before the empty string
    ("9.2p1-2+deb12u3", "9.2p1-2+deb12u4"),
    ("9.2p1-2+deb12u9", "9.2p1-2+deb12u10"),            # numerically, where a string compare says the opposite
    ("1.0-1", "1.0-1+b1"),                              # a binNMU is newer than its source version
    ("1.0-1+b1", "1.0-1+deb12u1"),                      # but older than a stable update
    ("1.0-1~deb12u1", "1.0-1"),                         # a backport-style ~ version precedes the release
    ("1:2.5.1-4", "1:2.5.1-4+deb12u1"),
])
def test_dpkg_version_ordering(older, newer):
    assert Version(older) < Version(newer)


# ---------------------------------------------------------------- every state


@pytest.mark.parametrize("cve,package,state,fixed", [
    ("CVE-2099-1001", "openssh", "fixed-available", "1:9.2p1-2+deb12u4"),
    ("CVE-2099-1002", "openssh", "not-affected", "1:9.2p1-2+deb12u2"),     # fixed before the installed update
    ("CVE-2099-1003", "openssh", "not-affected", "0"),                     # never affected bookworm
    ("CVE-2099-1004", "openssh", "not-affected", None),                    # resolved without a fixed version
    ("CVE-2099-2001", "glibc", "unimportant", None),
    ("CVE-2099-2002", "glibc", "will-not-fix", None),                      # no-dsa, minor issue
    ("CVE-2099-2003", "glibc", "will-not-fix", None),                      # postponed
    ("CVE-2099-2004", "glibc", "will-not-fix", None),                      # ignored
    ("CVE-2099-2101", "glibc", "fixed-available", "2.36-9+deb12u7"),       # only OSV (a DSA) knows it
    ("CVE-2099-3001", "attr", "undetermined", None),
    ("CVE-2099-3002", "attr", "fixed-available", "1:2.5.1-4+deb12u1"),     # tracker open, OSV fixed: the fix wins
    ("CVE-2099-4001", "zlib", "fixed-available", "1:1.2.13.dfsg-1+deb12u1"),
    ("CVE-2099-5001", "bash", "not-affected", "5.2.15-2"),                 # source version, not the +b2 binary
    ("CVE-2099-5101", "bash", "open", None),
    ("CVE-2099-5102", "bash", "unimportant", None),
    ("CVE-2099-5103", "bash", "not-affected", None),                       # introduced after the installed one
    ("CVE-2099-6001", "lvm2", "fixed-available", "2.03.16-2+deb12u1"),     # dmsetup's epoch 2 must not hide it
    ("CVE-2099-7001", "linux", "fixed-available", "6.1.194-1"),            # signed kernel matched as linux
])
def test_each_feed_state(sbom, feeds, cve, package, state, fixed):
    f = _by_id(scan(sbom, feeds, load_policy(now=NOW), NOW))[cve]
    assert (f["package"], f["state"], f["fixed_version"]) == (package, state, fixed)


def test_findings_match_on_source_packages_and_name_their_binaries(sbom, feeds):
    found = _by_id(scan(sbom, feeds, load_policy(now=NOW), NOW))
    assert sorted(found["CVE-2099-1001"]["binaries"]) == ["openssh-client", "openssh-server"]
    assert found["CVE-2099-6001"]["version"] == "2.03.16-2" and found["CVE-2099-6001"]["binaries"] == ["dmsetup"]
    assert found["CVE-2099-7001"]["component"] == "linux-signed-amd64" and found["CVE-2099-7001"]["version"] == \
        "6.1.192-2"
    assert found["CVE-2099-3002"]["sources"] == ["debian-tracker", "osv:DEBIAN-CVE-2099-3002"]
    assert found["CVE-2099-3002"]["urgency"] == "medium"             # the tracker's urgency, the OSV fix
    for absent in ("CVE-2099-1901", "CVE-2099-4002", "CVE-2099-9001"):   # withdrawn, other release, not installed
        assert absent not in found


@pytest.mark.parametrize("events,installed,expected", [
    ([{"introduced": "0"}, {"fixed": "1.0-2"}], "1.0-1", ("fixed-available", "1.0-2")),
    ([{"introduced": "0"}, {"fixed": "1.0-2"}], "1.0-2", ("not-affected", None)),
    ([{"introduced": "1.0-3"}, {"fixed": "1.0-5"}], "1.0-2", ("not-affected", None)),
    ([{"introduced": "0"}, {"last_affected": "1.0-3"}], "1.0-3", ("open", None)),
    ([{"introduced": "0"}, {"last_affected": "1.0-3"}], "1.0-3+deb12u1", ("not-affected", None)),
    ([{"introduced": "0"}, {"fixed": "1:0.9-1"}], "1.5-1", ("fixed-available", "1:0.9-1")),   # epoch wins
    ([{"fixed": "1.1-1"}, {"introduced": "0"}, {"introduced": "1.2-1"}, {"fixed": "1.3-1"}], "1.2-5",
     ("fixed-available", "1.3-1")),                                                             # events unsorted
])
def test_osv_ranges(events, installed, expected):
    affected = {"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    assert osv_finding(affected, Version(installed)) == expected


# ---------------------------------------------------------------- policy and gate


def test_default_policy_fails_on_fixable_findings_at_or_above_medium_and_on_old_fixes(sbom, feeds):
    result = scan(sbom, feeds, load_policy(now=NOW), NOW)
    assert result.decision == "fail"
    failing = sorted(f["id"] for f in result.findings if f["gate"] == "fail")
    # 2101 is low but its fix was published 50 days ago; 4001 is low and has no date (tracker only).
    assert failing == ["CVE-2099-1001", "CVE-2099-2101", "CVE-2099-3002", "CVE-2099-6001", "CVE-2099-7001"]
    assert _by_id(result)["CVE-2099-2101"]["age_days"] == 50
    assert any("CVE-2099-1001 in openssh 1:9.2p1-2+deb12u3: fixed in 1:9.2p1-2+deb12u4, urgency high" in r
               for r in result.reasons)
    assert result.counts["states"] == {"fixed-available": 6, "open": 1, "undetermined": 1, "will-not-fix": 3,
                                       "unimportant": 2, "not-affected": 5}


def test_policy_file_thresholds(tmp_path, sbom, feeds):
    policy = _policy(tmp_path, "fail_on:\n  fixable_at_or_above: high\n  open_at_or_above: medium\nmax_age_days:\n")
    failing = sorted(f["id"] for f in scan(sbom, feeds, policy, NOW).findings if f["gate"] == "fail")
    assert failing == ["CVE-2099-1001", "CVE-2099-5101", "CVE-2099-7001"]
    policy = _policy(tmp_path, "fail_on:\n  fixable_at_or_above: high\nmax_age_days:\nunassigned_urgency: low\n")
    assert [f["id"] for f in scan(sbom, feeds, policy, NOW).findings if f["gate"] == "fail"] == ["CVE-2099-1001"]


ACCEPT = """\
fail_on:
  fixable_at_or_above: high
max_age_days:
unassigned_urgency: low
accept:
  - id: ACC-1
    cves: [CVE-2099-1001]
    images: [linux]
    why: sshd is not reachable from outside the management network
    owner: platform-security
    approved_by: ciso
    ticket: SEC-42
    expires: {expires}
"""


def test_an_accepted_cve_is_reported_as_accepted_and_passes(tmp_path, sbom, feeds):
    result = scan(sbom, feeds, _policy(tmp_path, ACCEPT.format(expires="2099-03-31")), NOW)
    assert result.decision == "pass", result.reasons
    f = _by_id(result)["CVE-2099-1001"]
    assert f["gate"] == "accepted" and f["acceptance"]["owner"] == "platform-security"
    assert f["acceptance"]["expires"] == "2099-03-31" and f["acceptance"]["ticket"] == "SEC-42"


def test_an_expired_acceptance_fails_the_gate_naming_cve_owner_and_date(tmp_path, sbom, feeds):
    policy = _policy(tmp_path, ACCEPT.format(expires="2099-03-01"))
    assert scan(sbom, feeds, policy, NOW).decision == "pass"             # holds through its last day (UTC)
    result = scan(sbom, feeds, policy, NOW + dt.timedelta(days=1))
    assert result.decision == "fail"
    assert _by_id(result)["CVE-2099-1001"]["gate"] == "fail"
    assert any("ACC-1" in r and "CVE-2099-1001" in r and "platform-security" in r and "2099-03-01" in r
               for r in result.reasons), result.reasons


def test_an_acceptance_covering_nothing_is_stale(tmp_path, sbom, feeds):
    text = ACCEPT.format(expires="2099-03-31").replace("CVE-2099-1001]", "CVE-2099-1001, CVE-2098-*]")
    text = text.replace("fixable_at_or_above: high", "fixable_at_or_above: high\n  open_at_or_above: high")
    result = scan(sbom, feeds, _policy(tmp_path, text.replace("[linux]", "[other-image]")), NOW)
    assert result.decision == "fail" and any("ACC-1" in w and "stale" in w for w in result.warnings)


@pytest.mark.parametrize("edit,message", [
    (("expires: 2099-03-31", "expires: 2099-12-31"),
     "policy.yaml:13: accept[0].expires: 2099-12-31 is beyond the 180-day horizon (latest allowed 2099-08-28)"),
    (("    why: sshd is not reachable from outside the management network\n", ""),
     "policy.yaml:6: accept[0].why: is required"),
    (("why: sshd is not reachable from outside the management network", "why: '  '"),
     "policy.yaml:9: accept[0].why: must not be empty"),
    (("    owner: platform-security\n", ""), "policy.yaml:6: accept[0].owner: is required"),
    (("    expires: 2099-03-31\n", ""), "policy.yaml:6: accept[0].expires: is required"),
    (("expires: 2099-03-31", "expires: soon"), "policy.yaml:13: accept[0].expires: must be a date"),
    (("cves: [CVE-2099-1001]", "cves: ['CVE 1']"), "policy.yaml:7: accept[0].cves[0]: not a CVE id or glob"),
    (("approved_by: ciso", "aproved_by: ciso"), "policy.yaml:11: accept[0].aproved_by: unknown field"),
    (("fixable_at_or_above: high", "fixable_at_or_above: critical"),
     "policy.yaml:2: fail_on.fixable_at_or_above: must be one of unimportant, low, medium, high"),
])
def test_bad_acceptances_are_located_errors(tmp_path, edit, message):
    with pytest.raises(GoldenError) as err:
        _policy(tmp_path, ACCEPT.format(expires="2099-03-31").replace(*edit))
    assert message in str(err.value)


def test_two_acceptances_of_one_cve_are_an_error(tmp_path):
    text = ACCEPT.format(expires="2099-03-31")
    text += text[text.index("  - id: ACC-1"):].replace("ACC-1", "ACC-2")
    with pytest.raises(GoldenError, match=r"policy.yaml:15: accept\[1\].cves: CVE-2099-1001 is already accepted"):
        _policy(tmp_path, text)


def test_no_feed_or_a_feed_without_the_release_fails_closed(tmp_path, sbom):
    empty = load_feeds({}, str(tmp_path / "cache"), now=NOW)
    assert "no vulnerability feed was given" in scan(sbom, empty, load_policy(now=NOW), NOW).reasons
    other = tmp_path / "trixie.json"
    other.write_text(json.dumps({"bash": {"CVE-2099-1": {"releases": {"trixie": {"status": "open"}}}}}))
    result = scan(sbom, load_feeds({"debian-tracker": str(other)}, str(tmp_path / "c"), now=NOW),
                  load_policy(now=NOW), NOW)
    assert result.decision == "fail" and "the Debian tracker feed has no entry for release bookworm" in result.reasons


def test_a_malformed_feed_is_a_located_error(tmp_path):
    bad = tmp_path / "tracker.json"
    bad.write_text('{"bash": {"CVE-2099-1": {"releases": []}}}')
    with pytest.raises(GoldenError, match=r"tracker.json: bash.CVE-2099-1: entry must be an object"):
        load_feeds({"debian-tracker": str(bad)}, str(tmp_path / "cache"), now=NOW)


# ---------------------------------------------------------------- feeds from a URL, cached


@pytest.fixture
def feed_server():
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=FEEDS, **kw)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_a_feed_url_is_fetched_once_and_cached_with_digest_and_time(tmp_path, feed_server):
    base, requests = feed_server
    cache = str(tmp_path / "cache")
    feeds = load_feeds({"debian-tracker": f"{base}/tracker.json"}, cache, now=NOW)
    record = feeds.records[0]
    expected = hashlib.sha256(open(TRACKER, "rb").read()).hexdigest()
    assert (record["sha256"], record["cached"], record["fetched_at"]) == (expected, False, "2099-03-01T12:00:00Z")
    assert os.path.dirname(record["path"]) == os.path.join(cache, "feeds")
    beside = json.load(open(record["path"] + ".json"))
    assert beside == {"location": f"{base}/tracker.json", "sha256": expected, "size": os.path.getsize(TRACKER),
                      "fetched_at": "2099-03-01T12:00:00Z"}
    assert "openssh" in feeds.tracker
    again = load_feeds({"debian-tracker": f"{base}/tracker.json"}, cache, now=NOW + dt.timedelta(hours=1))
    assert again.records[0]["cached"] and again.records[0]["fetched_at"] == "2099-03-01T12:00:00Z"
    assert requests == ["/tracker.json"]
    load_feeds({"debian-tracker": f"{base}/tracker.json"}, cache, now=NOW, refresh=True)
    assert len(requests) == 2


def test_an_unreachable_feed_url_names_the_url(tmp_path, feed_server):
    base, _ = feed_server
    with pytest.raises(GoldenError, match=rf"{base}/missing.json: cannot fetch the feed"):
        load_feeds({"osv": f"{base}/missing.json"}, str(tmp_path), now=NOW)


def test_an_osv_zip_export_reads_like_the_directory(tmp_path, sbom, feeds):
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in os.listdir(OSV):
            zf.write(os.path.join(OSV, name), name)
    zipped = load_feeds({"debian-tracker": TRACKER, "osv": str(archive)}, str(tmp_path / "c"), now=NOW)
    policy = load_policy(now=NOW)
    assert _by_id(scan(sbom, zipped, policy, NOW)).keys() == _by_id(scan(sbom, feeds, policy, NOW)).keys()


# ---------------------------------------------------------------- outputs


def test_write_scan_writes_a_summary_and_a_valid_cyclonedx_document(tmp_path, sbom, feeds):
    run = Run(str(tmp_path / VERSION))
    os.makedirs(run.dir)
    result = scan(sbom, feeds, load_policy(now=NOW), NOW)
    summary_path, vex_path = write_scan(run, result)
    summary = json.load(open(summary_path))
    assert summary["decision"] == "fail" and summary["counts"]["states"]["fixed-available"] == 6
    assert {f["kind"] for f in summary["feeds"]} == {"debian-tracker", "osv"}
    assert all(f["sha256"] and f["fetched_at"] for f in summary["feeds"])
    vex = validate_sbom(json.load(open(vex_path)), file=vex_path)
    assert len(vex["vulnerabilities"]) == len(result.findings)
    refs = {c["bom-ref"] for c in vex["components"]}
    fixable = next(v for v in vex["vulnerabilities"] if v["id"] == "CVE-2099-1001")
    assert fixable["affects"][0]["ref"] in refs and fixable["analysis"]["state"] == "exploitable"
    assert fixable["analysis"]["response"] == ["update"] and fixable["ratings"][0]["severity"] == "high"


def test_rows_for_the_report_put_failures_first_and_leave_out_not_affected(sbom, feeds):
    table = rows(scan(sbom, feeds, load_policy(now=NOW), NOW))
    assert [r["gate"] for r in table[:5]] == ["fail"] * 5 and {r["gate"] for r in table[5:]} == {"pass"}
    assert "not-affected" not in {r["state"] for r in table} and len(table) == 13


def test_affected_images_reads_the_stored_sboms(tmp_path, sbom, feeds):
    store_root = tmp_path / "store"
    old, new = "golden-linux-2099.02.01+1", VERSION
    os.makedirs(store_root / "images" / old)
    os.makedirs(store_root / "images" / new)
    with open(store_root / "images" / new / "sbom.cdx.json", "w") as fh:
        json.dump(sbom, fh)
    index = {"images": {v: {"version": v, "file": f"images/{v}/{v}.qcow2", "sha256": "ef" * 32} for v in (old, new)}}
    (store_root / "index.json").write_text(json.dumps(index))
    store = Store(str(store_root))
    answer = {r["version"]: r for r in affected_images(store, feeds, "CVE-2099-1001")}
    assert answer[new]["verdict"] == "affected" and answer[new]["packages"][0]["package"] == "openssh"
    assert answer[old]["verdict"] == "unknown"
    assert {r["version"]: r["verdict"] for r in affected_images(store, feeds, "CVE-2099-1002")}[new] == "not-affected"
    with pytest.raises(GoldenError, match="cve: CVE-2099-0000 is in none of the loaded feeds"):
        affected_images(store, feeds, "CVE-2099-0000")
    shutil.rmtree(store_root)


def _changelog(root, package, entries):
    """A changelog.Debian.gz in `root`'s /usr/share/doc: entries (version, text), newest first."""
    import gzip
    doc = root / "usr" / "share" / "doc" / package
    doc.mkdir(parents=True)
    text = "".join(f"{package} ({version}) bookworm; urgency=medium\n\n  * {body}\n\n -- A <a@example.org>  "
                   f"Mon, 01 Jan 2024 00:00:00 +0000\n\n" for version, body in entries)
    with gzip.open(doc / "changelog.Debian.gz", "wt") as fh:
        fh.write(text)


def test_changelog_snapshot_fixes_each_cve_at_the_lowest_version_that_carries_it(tmp_path):
    from pipeline.supply.feeds import tracker_from_changelogs
    _changelog(tmp_path, "less", [("590-2.1~deb12u2", "Rebuild."), ("590-2.1~deb12u1", "Stable rebuild of 590-2.1."),
                                  ("590-2.1", "Fix CVE-2024-32487."), ("590-1.2", "Fix CVE-2022-46663."),
                                  ("590-1", "New upstream.")])
    feed = tracker_from_changelogs(str(tmp_path))
    fixed = {cve: e["releases"]["bookworm"]["fixed_version"] for cve, e in feed["less"].items()}
    # The stable rebuild carries the sid fix but sorts before it: the fix is at the rebuild.
    assert fixed == {"CVE-2024-32487": "590-2.1~deb12u1", "CVE-2022-46663": "590-1.2"}
    from pipeline.supply.scan import tracker_finding
    entry = feed["less"]["CVE-2024-32487"]
    assert tracker_finding(entry, "bookworm", Version("590-2.1~deb12u2"))[0] == "not-affected"
    assert tracker_finding(entry, "bookworm", Version("590-1.2"))[0] == "fixed-available"
