"""The addon's translations: the .pot holds every string the code has, and French says each of them."""

import io
import re
from pathlib import Path

import polib

from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import trans_export

I18N = Path(__file__).resolve().parent.parent / "i18n"
# %s, %d and %(name)s: a translation must keep the same ones, or the text cannot be filled in.
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_]+\))?[sd]")


def msgids(po):
    return {entry.msgid for entry in po if entry.msgid and not entry.obsolete}


@tagged("post_install", "-at_install")
class TestTranslations(TransactionCase):
    def test_the_pot_holds_every_string_of_the_code(self):
        """An export of the installed addon has exactly the committed .pot's strings."""
        buffer = io.BytesIO()
        trans_export(False, ["llm_fal_ai_realtime"], buffer, "po", self.env.cr)
        exported = msgids(polib.pofile(buffer.getvalue().decode()))
        committed = msgids(polib.pofile(str(I18N / "llm_fal_ai_realtime.pot")))
        self.assertFalse(sorted(exported - committed), "strings of the code missing from the .pot: regenerate it")
        self.assertFalse(sorted(committed - exported), "strings in the .pot the code no longer has: regenerate it")

    def test_french_says_every_string(self):
        """Every string of the .pot has a French translation with the same placeholders."""
        french = {entry.msgid: entry.msgstr for entry in polib.pofile(str(I18N / "fr.po")) if not entry.obsolete}
        missing, broken = [], []
        for msgid in sorted(msgids(polib.pofile(str(I18N / "llm_fal_ai_realtime.pot")))):
            text = french.get(msgid, "").strip()
            if not text:
                missing.append(msgid)
            elif sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(msgid)):
                broken.append(f"{msgid} -> {text}")
        self.assertEqual(missing, [], "strings without French")
        self.assertEqual(broken, [], "French that lost or added a placeholder")
