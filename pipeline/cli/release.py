"""Release commands: the tested bytes of a published version as an AMI or a vSphere template.

    golden release aws golden-linux-2026.12.01+1 --channel stable     # also: golden publish --target aws ...
    golden release vsphere golden-linux-2026.12.01+1 --url https://vcenter/sdk --user admin
"""

import argparse
import os

from pipeline.cli import common
from pipeline.cli.common import add
from pipeline.errors import GoldenError
from pipeline.release import tested as tested_mod
from pipeline.store import hooks
from pipeline.store.store import Store
from pipeline.util import Progress, read_json


def _spec_path(store, version, args):
    """--spec, else the spec the version was built from (its run record in the store)."""
    if args.spec:
        return args.spec
    run = read_json(os.path.join(store.root, "images", version, "run.json"), "run record")
    if not run.get("spec"):
        raise GoldenError("the run record names no spec: give --spec", file=os.path.join(
            store.root, "images", version, "run.json"))
    return run["spec"]


def cmd_aws(args):
    from pipeline.release import aws
    store = Store(args.store)
    target = aws.settings_from_spec(_spec_path(store, args.version, args))
    tested = tested_mod.load(store, args.version)
    amis = aws.publish(tested, target, channel=args.channel, log=Progress("release aws"))
    aws.record_release(store, args.version, amis, args.channel)
    for region, ami in amis.items():
        print(f"{region}\t{ami}")


def cmd_vsphere(args):
    from pipeline.release import vsphere
    store = Store(args.store)
    target = vsphere.settings_from_spec(_spec_path(store, args.version, args))
    tested = tested_mod.load(store, args.version)
    password = os.environ.get("GOLDEN_VSPHERE_PASSWORD")
    if not password:
        raise GoldenError("set GOLDEN_VSPHERE_PASSWORD to the vCenter password (it is never an option)",
                          field="GOLDEN_VSPHERE_PASSWORD")
    connection = vsphere.Connection(args.url, args.user, password, insecure=args.insecure)
    print(vsphere.publish(tested, target, connection, log=Progress("release vsphere")))


def _aws_options(sp):
    sp.add_argument("version")
    sp.add_argument("--spec", help="image spec with the aws section (default: the one the version was built from)")
    sp.add_argument("--channel", default="candidate", help="SSM parameter /golden/<image>/<channel> to point at the "
                    "AMI (default: candidate)")


def _vsphere_options(sp):
    sp.add_argument("version")
    sp.add_argument("--spec", help="image spec with the vsphere section (default: the one the version was built from)")
    sp.add_argument("--url", default=os.environ.get("GOLDEN_VSPHERE_URL"), required="GOLDEN_VSPHERE_URL" not in
                    os.environ, help="vCenter SDK URL, e.g. https://vcenter.example/sdk (env GOLDEN_VSPHERE_URL)")
    sp.add_argument("--user", default=os.environ.get("GOLDEN_VSPHERE_USER"), required="GOLDEN_VSPHERE_USER" not in
                    os.environ, help="vCenter user (env GOLDEN_VSPHERE_USER); the password is read from "
                    "GOLDEN_VSPHERE_PASSWORD")
    sp.add_argument("--insecure", action="store_true", help="accept a self-signed vCenter certificate")


# Each target: its command, its options, its help. `golden release TARGET` and `golden publish --target TARGET`
# are both made from this table.
TARGETS = {
    "aws": (cmd_aws, _aws_options, "upload the tested disk as an EBS snapshot, register the AMI in the spec's "
            "regions (private, tagged) and point the channel's SSM parameter at it"),
    "vsphere": (cmd_vsphere, _vsphere_options, "build an OVA from the tested disk and import it into vCenter as a "
                "template with its version, sha256 and gate digest"),
}


def add_publish_target(sp):
    """`golden publish --target aws|vsphere VERSION [OPTION ...]` on the publish parser; publish_to_target runs it."""
    sp.add_argument("--target", choices=sorted(TARGETS), help="instead of a run's candidate into the store: a "
                    "published VERSION's tested bytes to this target; VERSION and the options of `golden release "
                    "TARGET` follow (the same command: see golden release aws --help, golden release vsphere --help)")
    sp.add_argument("target_args", nargs=argparse.REMAINDER, metavar="VERSION [OPTION ...]",
                    help="with --target: the published version and the target's options")


def publish_to_target(args):
    """Run `golden publish --target TARGET VERSION ...` as `golden release TARGET VERSION ...`; the common options
    given before --target (--store, ...) are kept."""
    if not args.target:
        raise GoldenError(f"{' '.join(args.target_args)!r}: a version is published to a target only with --target "
                          f"{'|'.join(sorted(TARGETS))}", field="--target")
    if getattr(args, "run", None):
        raise GoldenError("give --run RUN (a run's candidate into the store) or --target TARGET VERSION (a published "
                          "version to a target), not both", field="--target")
    func, options, help = TARGETS[args.target]
    parser = argparse.ArgumentParser(prog=f"golden publish --target {args.target}", description=help,
                                     parents=[common.parents().common])
    options(parser)
    return func(parser.parse_args(args.target_args, namespace=argparse.Namespace(**vars(args))))


def register(sub, p):
    from pipeline.release import aws
    hooks.register(aws.follow_store)     # revocation and lifecycle reach the AMIs a version was released as
    release = sub.add_parser("release", help="publish a version's tested bytes to a target (AMI, vSphere template); "
                             "also spelled golden publish --target TARGET VERSION",
                             description="publish a version's tested bytes to a target (AMI, vSphere template); "
                             "also spelled golden publish --target TARGET VERSION")
    targets = release.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, (func, options, help) in TARGETS.items():
        options(add(targets, name, func, help, [p.common]))
