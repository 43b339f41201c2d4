"""Every user-facing string of the Django side ships in Persian and Arabic.

Fails on: a source string missing from the catalogues (run `make messages`), an empty or fuzzy
translation, a compiled `.mo` that is older than its `.po`, or a broken placeholder.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "vafa"
LOCALE = PACKAGE / "locale"
LANGS = ["fa", "ar"]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")


def parse_po(path: Path) -> dict[str, tuple[str, bool]]:
    """msgid → (msgstr, fuzzy) for every entry but the header; handles multi-line strings."""
    entries: dict[str, tuple[str, bool]] = {}
    pending_flags = ""  # the `#,` line just above the entry being read
    entry: dict[str, list[str]] = {}
    entry_fuzzy = False
    field = ""

    def flush() -> None:
        msgid = _unquote("".join(entry.get("msgid", [])))
        if msgid:
            entries[msgid] = (_unquote("".join(entry.get("msgstr", []))), entry_fuzzy)

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#,"):
            pending_flags = line
        elif line.startswith("msgid "):
            flush()
            entry, entry_fuzzy, pending_flags = {}, "fuzzy" in pending_flags, ""
            field = "msgid"
            entry[field] = [line[len("msgid ") + 1 : -1]]
        elif line.startswith("msgid_plural "):
            field = "msgid_plural"
            entry[field] = [line[len("msgid_plural ") + 1 : -1]]
        elif line.startswith(("msgstr ", "msgstr[")):
            # A plural entry has one msgstr[N] per form: keep the first, and an empty form
            # anywhere makes the whole entry untranslated.
            name, _, rest = line.partition(" ")
            value = rest[1:-1]
            if field == "msgstr" and name.startswith("msgstr["):
                if not value:
                    entry["msgstr"] = [""]
            else:
                entry["msgstr"] = [value]
            field = "msgstr"
        elif line.startswith('"') and field:
            entry[field].append(line[1:-1])
        else:
            field = ""
    flush()
    return entries


def _unquote(text: str) -> str:
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


@pytest.mark.parametrize("lang", LANGS)
def test_every_string_is_translated(lang: str) -> None:
    entries = parse_po(LOCALE / lang / "LC_MESSAGES" / "django.po")
    assert len(entries) > 50
    untranslated = [m for m, (s, _) in entries.items() if not s.strip()]
    fuzzy = [m for m, (_, f) in entries.items() if f]
    assert not untranslated, f"untranslated in {lang}: {untranslated}"
    assert not fuzzy, f"fuzzy in {lang}: {fuzzy}"


@pytest.mark.parametrize("lang", LANGS)
def test_placeholders_survive_translation(lang: str) -> None:
    for msgid, (msgstr, _) in parse_po(LOCALE / lang / "LC_MESSAGES" / "django.po").items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid


@pytest.mark.parametrize("lang", LANGS)
def test_the_compiled_catalogue_matches_the_source(lang: str) -> None:
    folder = LOCALE / lang / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for msgid, (msgstr, _) in parse_po(folder / "django.po").items():
        # parse_po keeps a plural entry's first form (msgstr[0]); n=0 selects that form in both
        # Persian (plural=n>1) and Arabic (form 0 is n==0). Singular entries are gettext's.
        shown = compiled.ngettext(msgid, msgid, 0) if "%(" in msgid else compiled.gettext(msgid)
        assert msgstr in (shown, compiled.gettext(msgid)), f"stale django.mo for {lang}: {msgid!r}"


def test_no_source_string_is_missing_from_the_catalogues(tmp_path: Path) -> None:
    if not shutil.which("xgettext"):
        require_service("gettext", "xgettext not installed (apt-get install gettext)")
    copy = tmp_path / "vafa"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vafa.settings",
           "VAFA_HOME": str(tmp_path / "home")}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "fa", "--no-location",
         "--ignore", "analytics/*"],
        cwd=copy, env=env, check=True, capture_output=True,
    )
    fresh = set(parse_po(copy / "locale" / "fa" / "LC_MESSAGES" / "django.po"))
    shipped = set(parse_po(LOCALE / "fa" / "LC_MESSAGES" / "django.po"))
    assert not fresh - shipped, f"run `make messages`; new strings: {sorted(fresh - shipped)}"
