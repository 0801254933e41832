"""The store fails closed on a wrong-shaped index, an edited signed record, a foreign first key and a full disk,
and never deletes a sealed image without an explicit command."""

import errno
import json
import os
import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.errors import GoldenError
from pipeline.paths import ROOT
from pipeline.store.store import Store

from .runfixtures import gated_and_signed, make_run, signing_key

QUIET = dict(log=lambda m: None)


def _sealed(store_dir, version="golden-linux-2026.11.20+1"):
    path = store_dir / "images" / version
    path.mkdir(parents=True)
    (path / f"{version}.qcow2").write_bytes(b"a published image")
    return path


def _tree(root):
    """{relative path: bytes} of every file under root (the lock file aside)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if name != ".lock":
                out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


@pytest.mark.parametrize("text, field", [
    ("{}", "images"), ("[]", None), ('{"images": []}', "images"), ('"images"', None),
    ('{"images": {"golden-linux-2026.11.20+1": []}}', "images.golden-linux-2026.11.20+1"),
    ('{"images": {"not-a-version": {}}}', "images.not-a-version"),
    ('{"images": {"golden-linux-2026.11.20+1": {"version": "golden-linux-2026.11.20+1", "image": "linux", '
     '"file": "x", "sha256": "beef"}}}', "images.golden-linux-2026.11.20+1.sha256"),
    ('{"images": {}, "channels": []}', "channels"),
])
def test_a_wrong_shaped_index_is_refused_naming_file_and_field_and_deletes_nothing(tmp_path, capsys, text, field):
    store_dir = tmp_path / "store"
    sealed = _sealed(store_dir)
    (store_dir / "index.json").write_text(text)
    run = make_run(tmp_path / "runs")
    public = gated_and_signed(run, tmp_path)
    with pytest.raises(GoldenError) as exc:
        Store(store_dir).publish(run, public_key=public, **QUIET)
    assert exc.value.file == str(store_dir / "index.json") and exc.value.field == field
    assert main(["list", "--store", str(store_dir)]) == 2
    assert "index.json" in capsys.readouterr().err
    assert (sealed / "golden-linux-2026.11.20+1.qcow2").exists() and (store_dir / "index.json").read_text() == text


def test_an_empty_images_object_keeps_sealed_images_reports_them_and_gc_removes_them_on_request(tmp_path, capsys):
    store_dir = tmp_path / "store"
    sealed = _sealed(store_dir)
    (store_dir / "index.json").write_text('{"images": {}}')
    store = Store(store_dir)
    run = make_run(tmp_path / "runs")
    store.publish(run, public_key=gated_and_signed(run, tmp_path), **QUIET)
    assert sealed.exists() and store.unlisted() == ["golden-linux-2026.11.20+1"]
    assert main(["list", "--store", str(store_dir)]) == 0
    assert "golden-linux-2026.11.20+1" in capsys.readouterr().out.split("unlisted")[0].splitlines()[-1]
    assert main(["store", "gc", "--store", str(store_dir)]) == 2          # nothing goes without --unlisted
    assert sealed.exists()
    assert main(["store", "gc", "--unlisted", "--store", str(store_dir)]) == 0
    assert not sealed.exists() and store.versions() == [run.version] and store.unlisted() == []
    assert store.events()[-1]["removed"] == ["golden-linux-2026.11.20+1"]


def test_gc_refuses_an_unlisted_image_a_fleet_runs(tmp_path):
    store_dir = tmp_path / "store"
    sealed = _sealed(store_dir)
    (store_dir / "fleets").mkdir()
    (store_dir / "fleets" / "web.json").write_text(json.dumps({"fleet": "web", "versions": [sealed.name]}))
    with pytest.raises(GoldenError, match="named by a channel or a fleet"):
        Store(store_dir).gc_unlisted(**QUIET)
    assert sealed.exists()


def test_a_publish_onto_an_unlisted_directory_of_the_same_version_refuses_and_keeps_it(tmp_path):
    store_dir = tmp_path / "store"
    run = make_run(tmp_path / "runs")
    sealed = _sealed(store_dir, run.version)
    with pytest.raises(GoldenError, match="unlisted image directory"):
        Store(store_dir).publish(run, public_key=gated_and_signed(run, tmp_path), **QUIET)
    assert (sealed / f"{run.version}.qcow2").read_bytes() == b"a published image"


@pytest.mark.parametrize("name", ["gate.json", "junit.xml", "scan.json"])
def test_publish_refuses_a_record_other_than_the_signed_one(tmp_path, name):
    run = make_run(tmp_path / "runs")
    public = gated_and_signed(run, tmp_path)
    path = run.path(name)
    text = open(path).read()
    # still a passing gate record, still the same tests: only not the bytes that were signed
    open(path, "w").write(text.replace('"reasons": []', '"reasons": [], "note": "edited"') if name == "gate.json"
                          else text.replace('time="0.01"', 'time="0.02"') if name == "junit.xml"
                          else text.replace('"counts": {}', '"counts": {}, "findings": []'))
    assert open(path).read() != text
    with pytest.raises(GoldenError, match="changed after signing") as exc:
        Store(tmp_path / "store").publish(run, public_key=public, **QUIET)
    assert exc.value.file == path
    assert not (tmp_path / "store" / "keys").exists() and not (tmp_path / "store" / "index.json").exists()


def test_a_failed_first_publish_leaves_the_store_trusting_nothing(tmp_path):
    run = make_run(tmp_path / "runs")
    gated_and_signed(run, tmp_path / "signer")
    _, other = signing_key(str(tmp_path / "publisher"))
    store = Store(tmp_path / "store")
    with pytest.raises(GoldenError, match="no trusted key verifies it"):
        store.publish(run, public_key=other, **QUIET)
    assert store.index()["keys"] == {} and not (tmp_path / "store" / "keys").exists()
    assert not (tmp_path / "store" / "index.json").exists()


def test_a_key_file_dropped_into_keys_is_not_trusted_but_golden_store_trust_is(tmp_path):
    store = Store(tmp_path / "store")
    first = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+1")
    store.publish(first, public_key=gated_and_signed(first, tmp_path / "k1"), **QUIET)
    second = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+2")
    other = gated_and_signed(second, tmp_path / "k2")
    (tmp_path / "store" / "keys" / "dropped.pub").write_bytes(open(other, "rb").read())
    with pytest.raises(GoldenError, match="no trusted key verifies it"):
        store.publish(second, **QUIET)
    assert main(["store", "trust", other, "--reason", "second CI runner", "--store", str(store.root)]) == 0
    store.publish(second, **QUIET)
    assert store.versions() == [first.version, second.version]
    assert [e["action"] for e in store.events()] == ["publish", "trust", "publish"]
    assert store.events()[0]["trusted"] == store.entry(first.version)["signed_by"]


def test_an_index_from_before_trust_was_recorded_trusts_its_keys_files(tmp_path):
    store = Store(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    store.publish(run, public_key=gated_and_signed(run, tmp_path), **QUIET)
    legacy = json.loads(open(store.index_path).read())
    for field in ("keys", "channels", "rotations", "deleted", "seq"):
        del legacy[field]
    open(store.index_path, "w").write(json.dumps(legacy))
    assert main(["verify", run.version, "--store", str(store.root)]) == 0


PUBLISH = ("import sys; from pipeline.store.store import Store; from pipeline.evidence.rundir import Run\n"
           "try:\n    Store(sys.argv[1]).publish(Run(sys.argv[2]), log=lambda m: None, public_key=sys.argv[3])\n"
           "except Exception as exc:\n    print(exc); sys.exit(2)\n")


def test_concurrent_first_publishes_with_different_keys_one_wins_the_other_is_refused(tmp_path):
    store_dir = tmp_path / "store"
    args = []
    for n in (1, 2):
        run = make_run(tmp_path / "runs", version=f"golden-linux-2026.11.26+{n}", payload=os.urandom(1 << 20) * 8)
        args.append((run.dir, gated_and_signed(run, tmp_path / f"k{n}")))
    procs = [subprocess.Popen([sys.executable, "-c", PUBLISH, str(store_dir), d, k], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE) for d, k in args]
    results = [(p.wait(timeout=120), p.stdout.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    assert "no trusted key verifies it" in [out for code, out in results if code][0]
    store = Store(store_dir)
    assert len(store.versions()) == 1 and len(store.index()["keys"]) == 1
    assert len(os.listdir(store_dir / "keys")) == 1


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (needs root, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_during_a_first_publish_is_a_clear_error_and_changes_nothing(tmp_path, small_fs, capsys,
                                                                                  monkeypatch):
    run = make_run(tmp_path / "runs", payload=os.urandom(1 << 20) * 2)
    gated_and_signed(run, tmp_path)
    key, _ = signing_key(tmp_path)
    monkeypatch.setenv("GOLDEN_SIGNING_KEY", key)
    store_dir = small_fs / "store"
    code = main(["publish", "--run", run.dir, "--store", str(store_dir), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert _tree(store_dir) == {}           # no index, no key, no image, no event
    assert not (store_dir / "keys").exists() and not (store_dir / ".staging").exists()


def test_a_full_disk_during_a_later_publish_leaves_the_store_as_it_was(tmp_path, small_fs, capsys, monkeypatch):
    store_dir = small_fs / "store"
    first = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+1")
    key, public = signing_key(tmp_path)
    gated_and_signed(first, tmp_path)
    Store(store_dir).publish(first, public_key=public, **QUIET)
    before = _tree(store_dir)
    big = make_run(tmp_path / "runs", version="golden-linux-2026.11.26+2", payload=os.urandom(1 << 20) * 2)
    gated_and_signed(big, tmp_path)
    monkeypatch.setenv("GOLDEN_SIGNING_KEY", key)
    code = main(["publish", "--run", big.dir, "--store", str(store_dir), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert _tree(store_dir) == before and not (store_dir / ".staging").exists()
    assert main(["verify", first.version, "--store", str(store_dir)]) == 0


def _fill(directory):
    """Write into `directory` until its filesystem is full."""
    fd = os.open(os.path.join(directory, "filler"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


@pytest.mark.parametrize("command", [
    ["store", "trust", "{key}", "--reason", "a second signer"],
    ["promote", "{version}", "--channel", "stable", "--reason", "baked"],
    ["revoke", "{version}", "--reason", "CVE-2026-0001"],
])
def test_a_full_disk_during_any_store_change_is_a_clear_error(tmp_path, small_fs, capsys, command):
    """Not only publish: every store change (one Store.change) is exit 2 with the reason and the store as it
    was, its undo done and events.jsonl cut back."""
    store_dir = small_fs / "store"
    run = make_run(tmp_path / "runs")
    Store(store_dir).publish(run, public_key=gated_and_signed(run, tmp_path), **QUIET)
    _, second = signing_key(tmp_path / "second")
    _fill(small_fs)
    before = _tree(store_dir)
    args = [a.format(key=second, version=run.version) for a in command]
    code = main([*args, "--store", str(store_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err, err
    assert f"cannot write the store ({command[1] if command[0] == 'store' else command[0]})" in err, err
    assert _tree(store_dir) == before
    os.unlink(small_fs / "filler")
    assert main(["verify", run.version, "--store", str(store_dir)]) == 0
    assert [e["action"] for e in Store(store_dir).events()] == ["publish"]


def test_publish_with_an_empty_key_cache_makes_no_key_and_touches_no_store(tmp_path, capsys, monkeypatch):
    """Publishing trusts a key, it never makes one: with no key in the cache, exit 2, no key, no store."""
    monkeypatch.delenv("GOLDEN_SIGNING_KEY", raising=False)
    run = make_run(tmp_path / "runs")
    gated_and_signed(run, tmp_path)
    cache, store_dir = tmp_path / "cache", tmp_path / "store"
    code = main(["publish", "--run", run.dir, "--store", str(store_dir), "--cache", str(cache)])
    err = capsys.readouterr().err
    assert code == 2 and "no signing key" in err and "Traceback" not in err, err
    assert not cache.exists() and not store_dir.exists()
