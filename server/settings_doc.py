"""The README's settings table, generated from `Settings` so that it cannot drift.

    python -m headwater.server.settings_doc           rewrite the table in README.md
    python -m headwater.server.settings_doc --check   exit 1 when README.md's table is out of date

The table sits between `<!-- settings:start -->` and `<!-- settings:end -->`; each row is one
field: its variable (without `HEADWATER_`), the flag that sets it, its default and its `help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from headwater.server.settings import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
REGENERATE = "python -m headwater.server.settings_doc"
MIB = 1024 * 1024


class MissingDescription(RuntimeError):
    """A setting declared without `setting(..., help=...)`: it would get a row with no meaning."""


def undescribed(cls: type = Settings) -> list[str]:
    """Fields declared the old way (a plain default with a comment), which the table cannot explain."""
    return [f.name for f in dataclasses.fields(cls) if not str(f.metadata.get("help") or "").strip()]


def render_default(name: str, value: Any) -> str:
    """A default as a reader wants it: 16 MiB, 10,000, `~/.headwater`, true, unset."""
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        home = Path.home()
        shown = f"~/{value.relative_to(home)}" if value.is_relative_to(home) else str(value)
        return f"`{shown}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if name.endswith("_bytes") and value and value % MIB == 0:
            return f"{value // MIB} MiB"
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    return f"`{value}`"


def render_table(cls: type = Settings) -> str:
    missing = undescribed(cls)
    if missing:
        raise MissingDescription(
            "settings without a description: " + ", ".join(missing)
            + "; declare them with setting(default, help=...) in server/settings.py"
        )
    defaults = cls()
    lines = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(cls):
        name = f"`{f.name.upper()}`"
        if f.metadata.get("flag"):
            name += f" (`{f.metadata['flag']}`)"
        meaning = " ".join(f.metadata["help"].split()).replace("|", "\\|")
        lines.append(f"| {name} | {render_default(f.name, getattr(defaults, f.name))} | {meaning} |")
    return "\n".join(lines)


def table_in(readme: str) -> str | None:
    """The table between the markers, or None when the markers are missing."""
    if START not in readme or END not in readme:
        return None
    return readme.split(START, 1)[1].split(END, 1)[0].strip("\n")


def with_table(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no {START} ... {END} markers")
    before, rest = readme.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{table}\n{END}{after}"


def default_readme() -> Path:
    return Path(__file__).resolve().parents[1] / "README.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description="Regenerate the README's settings table.")
    parser.add_argument("readme", nargs="?", type=Path, default=None, help="the README to rewrite (default: the repository's)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the table is out of date")
    args = parser.parse_args(argv)
    readme = args.readme or default_readme()
    if not readme.is_file():
        print(f"settings_doc: {readme} not found; run this from a clone of the repository, or name the README",
              file=sys.stderr)
        return 2
    text = readme.read_text(encoding="utf-8")
    try:
        updated = with_table(text, render_table())
    except (MissingDescription, ValueError) as exc:
        print(f"settings_doc: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(f"{readme}: the settings table is out of date; run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        readme.write_text(updated, encoding="utf-8")
        print(f"{readme}: settings table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
