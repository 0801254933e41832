from pipeline.image import mirror


def test_reads_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [signed-by=/k.gpg arch=amd64] http://one.example/debian bookworm main contrib\n"
        "deb-src http://one.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://two.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://two.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nEnabled: no\nURIs: http://off.example/\nSuites: bookworm\nComponents: main\n")
    (tmp_path / "sources.list.d" / "other.sources.disabled").write_text(
        "Types: deb\nURIs: http://x.example\nSuites: bookworm\nComponents: main\n")
    got = [s.one_line() for s in mirror.host_sources("bookworm", str(tmp_path))]
    assert got == ["deb http://one.example/debian bookworm main contrib",
                   "deb http://two.example/debian bookworm main",
                   "deb http://two.example/debian bookworm-updates main",
                   "deb http://two.example/debian-security bookworm-security main"]


def test_no_source_for_suite_is_a_clear_error(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://x.example/debian trixie main\n")
    try:
        mirror.host_sources("bookworm", str(tmp_path))
    except Exception as exc:
        assert "no apt source for suite 'bookworm'" in str(exc)
    else:
        raise AssertionError("expected an error")
