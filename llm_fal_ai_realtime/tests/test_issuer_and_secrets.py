"""Tickets name a stable issuer, and a rotated-out secret is not kept.

The issuer is set once; an administrator logging in through another address (which makes Odoo
rewrite ``web.base.url``) changes nothing a relay keys on. Upgrading an older database fixes the
issuer to the base URL its tickets named so far and removes the retired secret it kept.
"""

import importlib.util
import re
from pathlib import Path

import jwt

from odoo.tests import tagged

from .common import FalRealtimeCase

MIGRATION = Path(__file__).parent.parent / "migrations" / "18.0.1.2.0" / "post-migrate.py"
PARAM_ISSUER = "llm_fal_ai_realtime.issuer"


def run_migration(cr):
    spec = importlib.util.spec_from_file_location("llm_fal_ai_realtime_post_migrate_1_2_0", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration.migrate(cr, "18.0.1.1.1")


@tagged("post_install", "-at_install")
class TestStableIssuer(FalRealtimeCase):
    def ticket_claims(self):
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc("/llm_fal_ai_realtime/session", {"thread_id": self.thread.id})["result"]
        return jwt.decode(result["ticket"], self.secret, algorithms=["HS256"], audience="fal-realtime")

    def test_admin_login_through_another_address_does_not_move_the_issuer(self):
        """Odoo rewrites web.base.url when an administrator logs in elsewhere; tickets keep their issuer."""
        params = self.env["ir.config_parameter"].sudo()
        issuer = params.get_param(PARAM_ISSUER)
        self.assertTrue(issuer, "set at install")
        before = self.ticket_claims()
        self.assertEqual(before["iss"], issuer)
        self.logout()
        self.env["res.users"].browse(2).password = "admin"  # the administrator, logging in through the form
        page = self.url_open("/web/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        self.url_open("/web/login", data={"login": "admin", "password": "admin", "csrf_token": csrf})
        self.assertNotEqual(params.get_param("web.base.url"), "http://odoo.test", "Odoo rewrote the base URL")
        self.assertEqual(self.ticket_claims()["iss"], issuer)

    def test_settings_show_the_issuer_and_never_save_it(self):
        """The settings page shows the issuer; saving the page (even naming another) leaves it as it is."""
        issuer = self.env["llm.fal.realtime.relay"]._issuer()
        self.assertEqual(self.env["res.config.settings"].create({}).fal_realtime_issuer, issuer)
        self.env["res.config.settings"].create({"fal_realtime_issuer": "https://elsewhere.example"}).execute()
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param(PARAM_ISSUER), issuer)

    def test_upgrade_fixes_the_issuer_to_the_base_url_tickets_named(self):
        """A database from before the issuer parameter keeps naming the base URL of the day, from then on."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_ISSUER, False)
        params.set_param("web.base.url", "https://odoo.example.com")
        run_migration(self.env.cr)
        self.assertEqual(params.get_param(PARAM_ISSUER), "https://odoo.example.com")
        params.set_param("web.base.url", "http://10.0.0.5:8069")
        self.assertEqual(self.ticket_claims()["iss"], "https://odoo.example.com")


@tagged("post_install", "-at_install")
class TestRetiredSecretNotKept(FalRealtimeCase):
    def test_upgrade_removes_the_retired_secret_and_keeps_its_key_id_and_overlap(self):
        """An older database kept the retired secret in plain text: the upgrade drops it, the rest stays."""
        params = self.env["ir.config_parameter"].sudo()
        retired = "the-retired-secret-0123456789-abcdefghijkl"
        params.set_param("llm_fal_ai_realtime.previous_shared_secret", retired)
        params.set_param("llm_fal_ai_realtime.previous_secret_kid", "2026-11")
        params.set_param("llm_fal_ai_realtime.previous_secret_until", "2026-12-07 09:00:00 UTC")
        run_migration(self.env.cr)
        self.assertFalse(params.search([("value", "=", retired)]))
        info = self.env["res.config.settings"].create({}).fal_realtime_previous_secret_info
        self.assertIn("key id 2026-11", info)
        self.assertIn("2026-12-07 09:00:00 UTC", info)
