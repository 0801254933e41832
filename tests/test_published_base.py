"""`base: {image: NAME, channel: CHANNEL}`: a variant is built on the version a channel of the store
resolves to, verified first; a revoked, missing or tampered base stops the build before it starts."""

import os

import pytest

from pipeline.errors import GoldenError
from pipeline.image.base import ensure_base
from pipeline.image.spec import ImageSpec
from pipeline.store.revocation import revoke

from .test_verify import published, writable  # noqa: F401  (the fixture of one published image)


def _spec(tmp_path, channel="candidate"):
    path = tmp_path / "variant.yaml"
    path.write_text(f"name: web\nrole: general-purpose\nbase: {{image: linux, channel: {channel}}}\n")
    return ImageSpec.load(str(path))


def test_the_base_is_the_version_the_channel_resolves_to(tmp_path, published):  # noqa: F811
    store, version, directory = published
    base = ensure_base(_spec(tmp_path).base, str(tmp_path / "cache"), lambda m: None, store=store)
    assert base.origin == "published" and base.info["version"] == version
    assert base.path == str(directory / f"{version}.qcow2") and base.sha256 == store.entry(version)["sha256"]


@pytest.mark.parametrize("case", ["revoked", "no such channel", "tampered"])
def test_a_base_that_may_not_be_used_stops_the_build(tmp_path, published, case):  # noqa: F811
    store, version, directory = published
    channel = "candidate"
    if case == "revoked":
        revoke(store, version, "CVE-2026-0001 in the base")
    elif case == "no such channel":
        channel = "stable"
    else:
        image = directory / f"{version}.qcow2"
        writable(str(image))
        os.chmod(image, 0o644)
        with open(image, "ab") as fh:
            fh.write(b"x")
    with pytest.raises(GoldenError) as err:
        ensure_base(_spec(tmp_path, channel).base, str(tmp_path / "cache"), lambda m: None, store=store)
    assert err.value.field == "base.channel" and err.value.file.endswith("variant.yaml"), str(err.value)
    expected = {"revoked": "CVE-2026-0001 in the base", "no such channel": "stable",
                "tampered": "does not verify"}[case]
    assert expected in str(err.value)
