from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import FalRealtimeCase

REALTIME_APPS = {"fal-ai/fast-lcm-diffusion", "fal-ai/fast-turbo-diffusion", "local/preview"}
REALTIME_ONLY_FIELDS = {"strength", "width", "height", "image_bytes"}


@tagged("post_install", "-at_install")
class TestFetchModels(FalRealtimeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fresh_provider = cls.env["llm.provider"].create({
            "name": "fal fetch test provider", "service": "fal_ai", "api_key": "unused"})

    def fetch(self, **context):
        action = self.fresh_provider.with_context(**context).action_fetch_models()
        return self.env["llm.fetch.models.wizard"].browse(action["res_id"])

    def test_fetch_offers_realtime_endpoints_as_image_generation(self):
        """Fetch Models offers fal's realtime endpoints and local/preview, as image_generation models."""
        wizard = self.fetch()
        lines = {line.name: line for line in wizard.line_ids}
        self.assertTrue(REALTIME_APPS <= set(lines), set(lines))
        for app in REALTIME_APPS:
            self.assertEqual(lines[app].model_use, "image_generation", app)
            self.assertEqual(lines[app].details["realtime"]["app_id"], app)
            self.assertIn("realtime", lines[app].details["capabilities"])
        self.assertNotIn("fal-ai/lcm-sd15-i2i", lines, "image-to-image only: the live canvas sends no image")
        # The seed's models now land where the wizard reads their capabilities, too.
        self.assertEqual(lines["fal-ai/flux/dev"].model_use, "image_generation")
        self.assertFalse(lines["fal-ai/flux/dev"].details.get("realtime"))

    def test_importing_creates_realtime_models(self):
        """Importing the lines creates models that know their app and are flagged realtime."""
        wizard = self.fetch()
        wizard.line_ids.filtered(lambda line: line.name not in REALTIME_APPS | {"fal-ai/flux/dev"}).selected = False
        wizard.action_confirm()
        models = self.env["llm.model"].search([("provider_id", "=", self.fresh_provider.id)])
        by_name = {model.name: model for model in models}
        for app in REALTIME_APPS:
            self.assertEqual(by_name[app].realtime_app_id, app)
            self.assertTrue(by_name[app].is_realtime)
            self.assertEqual(by_name[app].model_use, "image_generation")
        self.assertFalse(by_name["fal-ai/flux/dev"].is_realtime)
        realtime = self.env["llm.model"].search([("provider_id", "=", self.fresh_provider.id),
                                                 ("is_realtime", "=", True)])
        self.assertEqual(set(realtime.mapped("name")), REALTIME_APPS)
        # Fetching again sees them as existing, not new.
        again = {line.name: line.status for line in self.fetch().line_ids}
        self.assertEqual(again["local/preview"], "existing")

    def test_fetch_one_model(self):
        """Fetch this model returns only the requested realtime endpoint."""
        wizard = self.fetch(default_model_to_fetch="fal-ai/fast-lcm-diffusion")
        self.assertEqual(wizard.line_ids.mapped("name"), ["fal-ai/fast-lcm-diffusion"])

    def test_schemas_split_the_normal_endpoint_from_the_live_frames(self):
        """input_schema is the normal endpoint's (what Render final may send); the live frames have their own."""
        lines = {line.name: line for line in self.fetch().line_ids}
        for app in ("fal-ai/fast-lcm-diffusion", "fal-ai/fast-turbo-diffusion"):
            final = set(lines[app].details["input_schema"]["properties"])
            self.assertIn("prompt", final)
            self.assertIn("seed", final)
            self.assertFalse(final & REALTIME_ONLY_FIELDS, app)
            live = set(lines[app].details["realtime"]["input_schema"]["properties"])
            self.assertEqual(live, {"prompt", "seed", "strength", "num_inference_steps", "width", "height"})
        self.assertNotIn("input_schema", lines["local/preview"].details, "the embedded app has no normal endpoint")

    def test_manual_app_id_is_checked(self):
        """A hand-typed realtime app id must look like owner/alias and be one the live canvas can drive."""
        with self.assertRaisesRegex(ValidationError, "is not a realtime app id"):
            self.plain_model.realtime_app_id = "no slash here"
        with self.assertRaisesRegex(ValidationError, "the live canvas only sends prompts"):
            self.plain_model.realtime_app_id = "fal-ai/lcm-sd15-i2i"
        self.plain_model.realtime_app_id = "fal-ai/fast-lcm-diffusion"
        self.assertTrue(self.plain_model.is_realtime)
