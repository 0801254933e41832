"""`golden cve` over a thousand published images, two ways in one run: with the package index each
image keeps beside its SBOM (packages.json, written at publish), and the full-parse way (the same
code on a store whose images have only their SBOMs, as images published before the index have).

    .venv/bin/python benchmarks/cve_index.py --sbom store/images/<v>/sbom.cdx.json [--images 1000]

The synthetic store holds copies of one real SBOM under 1,000 versions (the index.json of a real
store, without the qcow2 files, which `golden cve` never reads).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.paths import ROOT  # noqa: E402
from pipeline.store.store import Store  # noqa: E402
from pipeline.supply.feeds import load_feeds  # noqa: E402
from pipeline.supply.packages import INDEX_FILE, write_index  # noqa: E402
from pipeline.supply.sbom import SBOM_FILE  # noqa: E402
from pipeline.supply.scan import affected_images  # noqa: E402

FEED = os.path.join(ROOT, "feeds", "debian-bookworm-changelogs.json")


def synthetic_store(root, sbom, count, indexed):
    images = {}
    for i in range(count):
        version = f"golden-bench-2026.{1 + i // 250:02d}.{1 + i % 25:02d}+{1 + i % 10 + 10 * (i // 25 % 10)}"
        if version in images:
            raise SystemExit(f"version scheme collides at {i}")
        directory = os.path.join(root, "images", version)
        os.makedirs(directory)
        shutil.copyfile(sbom, os.path.join(directory, SBOM_FILE))
        if indexed:
            write_index(os.path.join(directory, SBOM_FILE), os.path.join(directory, INDEX_FILE))
        images[version] = {"version": version, "image": "bench", "sha256": "0" * 64, "file": f"images/{version}/x.qcow2"}
    with open(os.path.join(root, "index.json"), "w", encoding="utf-8") as fh:
        json.dump({"images": images}, fh)
    return Store(root)


def timed(store, feeds, cve, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = affected_images(store, feeds, cve)
        seconds = time.perf_counter() - t0
        best = seconds if best is None else min(best, seconds)
    return best, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sbom", required=True, help="a real SBOM (store/images/<v>/sbom.cdx.json)")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--cve", help="CVE id to ask about (default: the feed's first CVE of openssh)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each way; the best is reported")
    args = p.parse_args()
    feeds = load_feeds({"debian-tracker": [FEED]}, tempfile.mkdtemp(prefix="golden-bench-cache-"))
    cve = args.cve or sorted(feeds.tracker["openssh"])[0]
    work = tempfile.mkdtemp(prefix="golden-bench-cve-")
    try:
        indexed = synthetic_store(os.path.join(work, "indexed"), args.sbom, args.images, True)
        parsed = synthetic_store(os.path.join(work, "sbom-only"), args.sbom, args.images, False)
        t_index, rows_index = timed(indexed, feeds, cve, args.repeat)
        t_parse, rows_parse = timed(parsed, feeds, cve, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = [(r["verdict"], r["packages"]) for r in rows_index] == [(r["verdict"], r["packages"]) for r in rows_parse]
    print(json.dumps({"images": args.images, "cve": cve, "verdicts": sorted({r["verdict"] for r in rows_index}),
                      "indexed_seconds": round(t_index, 3), "full_parse_seconds": round(t_parse, 3),
                      "speedup": round(t_parse / t_index, 1), "same_answers": same}, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
