"""docs/benchmarks.md is written one section at a time: a rerun replaces its own section and keeps the others."""
from bench.__main__ import place, stamped


def test_a_section_replaces_its_namesake_and_keeps_the_others() -> None:
    document = "# Benchmarks\n\nintro\n\n## A\n\nold a\n\n## B\n\nold b\n"
    updated = place(document, "## A\n\nnew a\n")
    assert updated == "# Benchmarks\n\nintro\n\n## A\n\nnew a\n\n## B\n\nold b\n"
    assert place(updated, "## B\n\nnew b") == "# Benchmarks\n\nintro\n\n## A\n\nnew a\n\n## B\n\nnew b\n"


def test_a_new_section_is_appended() -> None:
    assert place("# Benchmarks\n\n## A\n\na\n", "## C\n\nc\n") == "# Benchmarks\n\n## A\n\na\n\n## C\n\nc\n"


def test_each_section_says_when_where_and_how_it_was_measured() -> None:
    text = stamped("## Drain\n\nfigures\n", "drain")
    heading, blank, stamp, rest = text.split("\n", 3)
    assert heading == "## Drain" and blank == ""
    assert stamp.startswith("_Measured ") and "`python -m bench drain`" in stamp and "CPUs" in stamp
    assert rest == "\nfigures\n"
