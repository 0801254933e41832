"""The candidate says what it is: /etc/golden/image.json names its version, image, role and level, so a
host of a fleet answers "what do I run" itself (pipeline/image/stamp.py writes it at build time)."""

from pipeline.checks.authoring import violates
from pipeline.image import stamp


@violates(f"sed -i 's/\"version\": *\"[^\"]*\"/\"version\": \"golden-other-2000.01.01+1\"/' {stamp.PATH}")
def test_the_stamp_names_this_image(host, image_spec, candidate_version):
    found = {path: host.file(path) for path in stamp.MODES}
    modes = {path: (f.mode, f"{f.user}:{f.group}") for path, f in found.items() if f.exists}
    text = found[stamp.PATH].content_string if stamp.PATH in modes else None
    problems = stamp.findings(text, candidate_version, image_spec, modes)
    assert not problems, "; ".join(problems)
