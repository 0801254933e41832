"""CIS 7.1.11 and 7.1.12: files on local filesystems that everyone may write, or that nobody owns.

The fact sections scan every local filesystem (ext*, xfs, btrfs, tmpfs), outside /proc and /sys.
"""

from pipeline.checks.authoring import control, require


@control("7.1.11", violate="install -d -m 0777 /srv/local-upload", needs=["world_writable"])
def test_world_writable_secured(facts):
    """No file is writable by everyone, and a directory that is has the sticky bit (owners alone delete)."""
    require([f"{path} is writable by everyone (a file, or a directory without the sticky bit)"
             for path in facts.lines("world_writable")])


@control("7.1.12", violate="install -m 0644 -o 4245 -g 4245 /dev/null /var/tmp/left-behind", needs=["unowned"])
def test_no_unowned_files(facts):
    """Every file has an owner and a group that exist: a new account reusing the id would inherit it."""
    require([f"{path} has an owner or group that does not exist" for path in facts.lines("unowned")])
