import copy

from odoo import models

from .fal_realtime_relay import LOCAL_PREVIEW_APP


def _realtime_input_schema(image_to_image=False):
    """The realtime input frame as a JSON schema (DESIGN.md wire protocol)."""
    properties = {
        "prompt": {"type": "string", "title": "Prompt", "description": "What the picture shows"},
        "seed": {"type": "integer", "title": "Seed", "default": 42, "minimum": 0},
        "strength": {"type": "number", "title": "Strength", "default": 0.5, "minimum": 0, "maximum": 1},
        "num_inference_steps": {"type": "integer", "title": "Steps", "default": 4, "minimum": 1, "maximum": 8},
        "width": {"type": "integer", "title": "Width", "default": 512},
        "height": {"type": "integer", "title": "Height", "default": 512},
    }
    if image_to_image:
        properties["image_bytes"] = {"type": "string", "format": "binary", "title": "Input image"}
    return {"type": "object", "properties": properties, "required": ["prompt"]}


# fal's realtime-capable endpoints, plus the relay's embedded preview app.
REALTIME_MODELS = [
    ("fal-ai/fast-lcm-diffusion", "Latent Consistency (SDXL/SD1.5), text-to-image in a few steps", False),
    ("fal-ai/fast-turbo-diffusion", "SDXL Turbo / SD Turbo, text-to-image in one to four steps", False),
    ("fal-ai/lcm-sd15-i2i", "Latent Consistency SD1.5, image-to-image", True),
    (LOCAL_PREVIEW_APP, "The relay's embedded CPU preview renderer (no fal account needed; not a diffusion model)",
     False),
]


class LLMProvider(models.Model):
    _inherit = "llm.provider"

    def fal_ai_models(self, model_id=None):
        """Add fal's realtime endpoints to the seed's list.

        Capabilities go inside ``details``, where the core Fetch Models wizard reads them;
        the seed's entries carry them at the top level, so they are copied over too.

        :param model_id: when given, only that model is returned
        :return: list of model dicts ``{id, name, description, details}``
        """
        result = []
        for entry in super().fal_ai_models(model_id=model_id):
            entry = copy.deepcopy(entry)
            details = entry.setdefault("details", {})
            if "capabilities" in entry and "capabilities" not in details:
                details["capabilities"] = list(entry["capabilities"])
            result.append(entry)
        for app_id, description, image_to_image in REALTIME_MODELS:
            result.append({
                "id": app_id,
                "name": app_id,
                "description": description,
                "details": {
                    "id": app_id,
                    "description": description,
                    "capabilities": ["image_generation", "realtime"] + (["image_to_image"] if image_to_image else []),
                    "realtime": {"app_id": app_id, "image_to_image": image_to_image},
                    "input_schema": _realtime_input_schema(image_to_image),
                    "output_schema": {"type": "array", "items": {"type": "string", "format": "uri"},
                                      "title": "Generated Images"},
                },
            })
        if model_id:
            result = [entry for entry in result if entry["name"] == model_id]
        return result

    def _determine_model_use(self, name, capabilities):
        """fal models that generate images are ``image_generation`` models, not chat models."""
        if self.service == "fal_ai" and "image_generation" in (capabilities or []):
            return "image_generation"
        return super()._determine_model_use(name, capabilities)
