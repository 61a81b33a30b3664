"""Write the ReaPack index (index.xml) for the tad-daemon ReaScripts.

    python reaper_scripts/make_index.py                        # index.xml for the published repository
    python reaper_scripts/make_index.py --base-url URL --out F # e.g. file:///home/me/tad-daemon/reaper_scripts/

One ReaPack package holds every action: the package file's metadata header (@version, @description,
@author, @provides, @changelog, as reapack-index reads them) says which files it installs; files marked
[main] become actions, tad_common.lua is installed next to them. Index format:
https://github.com/cfillion/reapack/wiki/Index-Format
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "tad-daemon_Replace selected items with a variation.lua"
INDEX = HERE / "index.xml"
# Where ReaPack downloads the files from: the published repository's reaper_scripts/ folder.
BASE_URL = "https://raw.githubusercontent.com/tad-daemon/tad-daemon/main/reaper_scripts/"
CATEGORY = "tad-daemon"


def read_header(path: Path) -> dict:
    """The package's metadata tags from its leading '--' comment block: {tag: value or [lines]}."""
    tags, current = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        text = line[2:]
        m = re.match(r"\s*@(\w+)\s*(.*)$", text)
        if m:
            current = m.group(1).lower()
            tags[current] = [m.group(2).strip()] if m.group(2).strip() else []
        elif current and text.startswith("   "):
            tags[current].append(text.strip())
        else:
            current = None
    return tags


def rtf(markdown_lines: list[str]) -> str:
    """The package's @about text as the RTF ReaPack's About pane shows (it streams it in as RTF on Windows;
    reapack-index makes it with pandoc): '#' lines bold, paragraphs kept, Markdown marks dropped, non-ASCII
    as RTF Unicode escapes."""
    def text(s: str) -> str:
        s = s.replace("`", "").replace("**", "")
        s = s.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
        return "".join(c if ord(c) < 128 else f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?" for c in s)

    paragraphs, current = [], []
    for line in markdown_lines + [""]:
        if line.startswith("#"):
            paragraphs.append("{\\b " + text(line.lstrip("#").strip()) + "}")
        elif line.strip():
            current.append(text(line.strip()))
            continue
        if current:
            paragraphs.append(" ".join(current))
            current = []
    return "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0\\fswiss Helvetica;}}\\f0\\pard " + "\\par\\par ".join(
        paragraphs) + "\\par}"


def render(base_url: str = BASE_URL) -> str:
    tags = read_header(PACKAGE)
    version, = tags["version"]
    author, = tags.get("author", [""])
    description = " ".join(tags.get("description", []))
    about = rtf(tags.get("about", []))
    changelog = "\n".join(tags.get("changelog", []))
    if not base_url.endswith("/"):
        base_url += "/"

    def url(name: str) -> str:
        return escape(base_url + quote(name))

    sources = [f'        <source main="main">{url(PACKAGE.name)}</source>']
    for entry in tags["provides"]:
        m = re.match(r"(\[main\]\s*)?(.+)$", entry)
        name = m.group(2).strip()
        main = ' main="main"' if m.group(1) else ""
        sources.append(f"        <source{main} file={quoteattr(name)}>{url(name)}</source>")
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<index version="1" name="tad-daemon">',
        f"  <category name={quoteattr(CATEGORY)}>",
        f'    <reapack name={quoteattr(PACKAGE.name)} type="script" desc={quoteattr(description)}>',
        # The only place ReaPack's About pane reads a package's description from (index_v1.cpp).
        f"      <metadata><description><![CDATA[{about}]]></description></metadata>",
        f"      <version name={quoteattr(version)} author={quoteattr(author)}>",
        *sources,
        f"        <changelog><![CDATA[{changelog}]]></changelog>",
        "      </version>",
        "    </reapack>",
        "  </category>",
        "</index>",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=BASE_URL, help="URL of the folder holding the scripts")
    parser.add_argument("--out", type=Path, default=INDEX, help="where to write the index (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.write_text(render(args.base_url), encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
