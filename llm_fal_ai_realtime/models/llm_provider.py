import copy

from odoo import models

from .fal_realtime_relay import LOCAL_PREVIEW_APP

IMAGE_SIZES = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]


def _realtime_input_schema():
    """What LiveCanvas sends on the realtime connection, one msgpack map per input (DESIGN.md)."""
    return {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "title": "Prompt", "description": "What the picture shows"},
            "seed": {"type": "integer", "title": "Seed", "default": 42, "minimum": 0},
            "strength": {"type": "number", "title": "Strength", "default": 0.5, "minimum": 0, "maximum": 1},
            "num_inference_steps": {"type": "integer", "title": "Steps", "default": 4, "minimum": 1, "maximum": 8},
            "width": {"type": "integer", "title": "Width", "default": 512},
            "height": {"type": "integer", "title": "Height", "default": 512},
        },
        "required": ["prompt"],
    }


def _final_input_schema(default_steps):
    """The app's normal (queue) endpoint, which Render final calls through llm_fal_ai's job path.

    Only fields fal's text-to-image endpoints of these apps accept; the realtime-only ones
    (strength, width/height, image_bytes) are not part of it.
    """
    return {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "title": "Prompt", "description": "What the picture shows"},
            "negative_prompt": {"type": "string", "title": "Negative Prompt", "default": ""},
            "image_size": {"type": "string", "title": "Image Size", "enum": IMAGE_SIZES, "default": "square_hd"},
            "num_inference_steps": {"type": "integer", "title": "Steps", "default": default_steps,
                                    "minimum": 1, "maximum": 8},
            "seed": {"type": "integer", "title": "Seed", "minimum": 0},
            "num_images": {"type": "integer", "title": "Image Quantity", "default": 1, "minimum": 1, "maximum": 4},
        },
        "required": ["prompt"],
    }


# fal's text-to-image realtime apps, plus the relay's embedded preview app: (app id, description,
# steps a final render uses, or None without a final endpoint). Image-to-image-only realtime apps
# (e.g. fal-ai/lcm-sd15-i2i) are left out: the live canvas sends no input image.
REALTIME_MODELS = [
    ("fal-ai/fast-lcm-diffusion", "Latent Consistency (SDXL/SD1.5), text-to-image in a few steps", 6),
    ("fal-ai/fast-turbo-diffusion", "SDXL Turbo / SD Turbo, text-to-image in one to four steps", 2),
    (LOCAL_PREVIEW_APP, "The relay's embedded CPU preview renderer (no fal account needed; not a diffusion model)",
     None),
]


def realtime_model_details(app_id, description, final_steps):
    """``llm.model.details`` of a realtime model as Fetch Models saves it.

    ``input_schema`` describes the normal endpoint (what llm_generate and Render final send);
    ``realtime.input_schema`` the live frames.

    :param app_id: the realtime app id (also the model's name, hence its fal endpoint)
    :param description: one line about the model
    :param final_steps: default steps of its normal endpoint, or None when it has none
    :return: dict
    """
    details = {
        "id": app_id,
        "description": description,
        "capabilities": ["image_generation", "realtime"],
        "realtime": {"app_id": app_id, "input_schema": _realtime_input_schema()},
        "output_schema": {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Generated Images"},
    }
    if final_steps:
        details["input_schema"] = _final_input_schema(final_steps)
    return details


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
        for app_id, description, final_steps in REALTIME_MODELS:
            result.append({
                "id": app_id,
                "name": app_id,
                "description": description,
                "details": realtime_model_details(app_id, description, final_steps),
            })
        if model_id:
            result = [entry for entry in result if entry["name"] == model_id]
        return result

    def _determine_model_use(self, name, capabilities):
        """fal models that generate images are ``image_generation`` models, not chat models."""
        if self.service == "fal_ai" and "image_generation" in (capabilities or []):
            return "image_generation"
        return super()._determine_model_use(name, capabilities)
