import base64
import binascii
import logging

from markupsafe import Markup

from odoo import _, models
from odoo.exceptions import UserError
from odoo.tools import html2plaintext

from .fal_realtime_relay import LOCAL_PREVIEW_APP

_logger = logging.getLogger(__name__)

MAX_KEEP_BYTES = 8 * 1024 * 1024
MAX_PROMPT_CHARS = 4000
IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)


def sniff_image(raw):
    """Identify JPEG, PNG or WebP bytes.

    :param raw: image bytes
    :return: ``(mimetype, extension)`` or ``(None, None)``
    """
    for signature, mimetype, extension in IMAGE_SIGNATURES:
        if raw.startswith(signature):
            return mimetype, extension
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None, None


class LLMThread(models.Model):
    _inherit = "llm.thread"

    def fal_realtime_keep_frame(self, image_base64, prompt, seed=None, app=None):
        """Post a live-canvas frame into the thread as the current user's message.

        The image is stored as a binary ``ir.attachment`` (not a URL that expires);
        the prompt and seed go into the message body and ``body_json``.

        :param image_base64: the frame's JPEG/PNG/WebP bytes, base64-encoded
        :param prompt: the prompt that produced the frame
        :param seed: the seed that produced the frame (integer or None)
        :param app: the realtime app id that rendered it (for the record)
        :return: the new ``mail.message`` record
        :raise UserError: when the image or the parameters are not valid
        """
        self.ensure_one()
        self.check_access("write")
        if not isinstance(image_base64, str) or not image_base64:
            raise UserError(_("Keep needs the frame as a base64 string."))
        if len(image_base64) > MAX_KEEP_BYTES * 4 // 3 + 4:
            raise UserError(_("The frame is larger than %s MB.", MAX_KEEP_BYTES // (1024 * 1024)))
        try:
            raw = base64.b64decode(image_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UserError(_("The frame is not valid base64.")) from exc
        mimetype, extension = sniff_image(raw)
        if not mimetype:
            raise UserError(_("The frame is not a JPEG, PNG or WebP image."))
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise UserError(_("The prompt must be text of at most %s characters.", MAX_PROMPT_CHARS))
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise UserError(_("The seed must be an integer."))
        if app is not None and not isinstance(app, str):
            raise UserError(_("The app must be an app id."))
        prompt = prompt.strip()
        meta = _("Kept from the live preview · seed %(seed)s · %(app)s",
                 seed=seed if seed is not None else "-", app=app or self.model_id.realtime_app_id or "")
        body = Markup("<p>%s</p><p class='o_live_canvas_keep_meta text-muted small'>%s</p>") % (
            prompt or _("(no prompt)"), meta)
        filename = f"live-preview-{self.id}-{seed if seed is not None else 'x'}.{extension}"
        message = self.message_post(
            body=body,
            llm_role="user",
            author_id=self.env.user.partner_id.id,
            message_type="comment",
            attachments=[(filename, raw)],
            body_json={"prompt": prompt, "seed": seed},
        )
        _logger.info("live preview frame kept: thread=%s message=%s bytes=%s", self.id, message.id, len(raw))
        return message

    # ------------------------------------------------------------------ render final

    def _fal_realtime_final_inputs(self, message):
        """Generation inputs for a final render of a realtime thread's user message.

        A message typed in the composer carries its prompt in the body only; llm_generate
        reads ``body_json``, so the prompt (and any seed) is put there.

        :param message: the user's ``mail.message``
        :return: dict of inputs for llm_fal_ai's generation
        :raise UserError: for the embedded preview app, or without any prompt
        """
        self.ensure_one()
        if self.model_id.realtime_app_id == LOCAL_PREVIEW_APP:
            raise UserError(_("The embedded preview (local/preview) only renders live frames: use Keep to save one, "
                              "or choose a fal model to render a final image."))
        inputs = dict(message.body_json or {}) if isinstance(message.body_json, dict) else {}
        if not inputs.get("prompt"):
            inputs["prompt"] = html2plaintext(message.body or "").strip()
        if not inputs["prompt"]:
            raise UserError(_("Type a prompt first: the final render needs one."))
        return inputs

    def _generate_response(self, message):
        """Render final: realtime models render through llm_fal_ai's own generation path."""
        self.ensure_one()
        if self.model_id.is_realtime:
            inputs = self._fal_realtime_final_inputs(message)
            if inputs != message.body_json:
                message.sudo().body_json = inputs
        return (yield from super()._generate_response(message))
