import base64
import binascii
import logging

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import html2plaintext

from .fal_realtime_relay import LOCAL_PREVIEW_APP

_logger = logging.getLogger(__name__)

MAX_KEEP_BYTES = 8 * 1024 * 1024
MAX_PROMPT_CHARS = 4000
FINAL_DEFAULT_FIELDS = frozenset({"prompt", "seed"})
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
        :raise AccessError: the user may not post here, or the model's provider is in no active company
        :raise UserError: when the image or the parameters are not valid
        """
        self.ensure_one()
        if self._fal_realtime_is_driver():
            self.check_access("read")  # the pen holder may be a follower, who cannot write the thread
        else:
            self.check_access("write")
        self.model_id._check_fal_realtime_company()
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
        prompt, seed = self._fal_realtime_check_prompt_seed(prompt, seed)
        if app is not None and not isinstance(app, str):
            raise UserError(_("The app must be an app id."))
        meta = _("Kept from the live preview · seed %(seed)s · %(app)s",
                 seed=seed if seed is not None else "-", app=app or self.model_id.realtime_app_id or "")
        body_json = {"prompt": prompt, "seed": seed}
        assistant = self.sudo().assistant_id
        if assistant:
            meta = _("%(meta)s · by %(assistant)s", meta=meta, assistant=assistant.name)
            body_json["assistant_id"] = assistant.id
        filename = f"live-preview-{self.id}-{seed if seed is not None else 'x'}.{extension}"
        # A pen holder who only follows the thread posts as themself, through sudo (no write access).
        poster = self if self.has_access("write") else self.sudo()
        message = poster.message_post(
            body=self._fal_realtime_body(prompt, meta),
            llm_role="user",
            **self._fal_realtime_author(),
            message_type="comment",
            attachments=[(filename, raw)],
            body_json=body_json,
        )
        _logger.info("live preview frame kept: thread=%s message=%s bytes=%s", self.id, message.id, len(raw))
        return message

    @api.model
    def _fal_realtime_check_prompt_seed(self, prompt, seed):
        """Validate a prompt and seed sent by the browser.

        :return: ``(prompt stripped, seed)``
        :raise UserError: naming what is wrong
        """
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise UserError(_("The prompt must be text of at most %s characters.", MAX_PROMPT_CHARS))
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise UserError(_("The seed must be a non-negative integer."))
        return prompt.strip(), seed

    @api.model
    def _fal_realtime_body(self, prompt, meta):
        """The HTML body of a live-preview message: the prompt, escaped, then a small grey line."""
        return Markup("<p>%s</p><p class='o_live_canvas_keep_meta text-muted small'>%s</p>") % (
            prompt or _("(no prompt)"), meta)

    # ------------------------------------------------------------------ render final

    def _fal_realtime_check_final(self):
        """Refuse a final render where there is none: no realtime model, or the embedded preview app.

        :raise UserError: saying why
        """
        self.ensure_one()
        if not self.model_id.is_realtime:
            raise UserError(_("This conversation's model has no live preview to render at full quality."))
        if self.model_id.realtime_app_id == LOCAL_PREVIEW_APP:
            raise UserError(_("The embedded preview (local/preview) only renders live frames: use Keep to save one, "
                              "or choose a fal model to render a final image."))

    def fal_realtime_render_final(self, prompt, seed=None):
        """Render final: send the prompt and seed to the model's normal fal endpoint as a generation job.

        The request is posted as the user's message (prompt and seed in ``body_json``); a job is made
        from it and queued the way llm_generate_job does, so llm_fal_ai submits it to fal's queue with
        this addon's verified webhook (or none, for polling alone), and the image is kept in Odoo and
        posted when fal has finished (``llm.generation.job._fal_realtime_land``).

        :param prompt: the prompt of the frame on the canvas
        :param seed: its seed
        :return: ``(message, job)``; the job is ``failed`` with its ``error_message`` when fal refused the
            request or could not be reached, ``running`` once fal has queued it
        :raise AccessError: the user may not post here, or the model's provider is in no active company
        :raise UserError: no final render for this model, or no prompt
        """
        self.ensure_one()
        self.check_access("write")
        self._fal_realtime_check_final()
        self.model_id._check_fal_realtime_company()
        self._fal_realtime_check_final_ready()
        prompt, seed = self._fal_realtime_check_prompt_seed(prompt, seed)
        if not prompt:
            raise UserError(_("Type a prompt first: the final render needs one."))
        inputs = {"prompt": prompt} if seed is None else {"prompt": prompt, "seed": seed}
        meta = _("Render final · seed %(seed)s · %(app)s",
                 seed=seed if seed is not None else "-", app=self.model_id.name)
        assistant = self.sudo().assistant_id
        if assistant:  # recorded with the request; prepare_generation_inputs keeps it away from fal
            meta = _("%(meta)s · by %(assistant)s", meta=meta, assistant=assistant.name)
            inputs = dict(inputs, assistant_id=assistant.id)
        message = self.message_post(
            body=self._fal_realtime_body(prompt, meta),
            llm_role="user",
            author_id=self.env.user.partner_id.id,
            message_type="comment",
            body_json=inputs,
        )
        job = self._create_generation_job_from_message(message)
        if self.env["llm.generation.queue"].sudo().search_count([("model_id", "=", self.model_id.id)]):
            job.action_queue()  # the model has a queue: its limits apply
        else:
            # No queue of its own: start now rather than let action_queue create one, which would also
            # switch this model's chat replies to the seed's queue path.
            job.write({"state": "queued", "queued_at": fields.Datetime.now()})
            self._fal_realtime_start(job)
        if job.state == "failed":
            self._fal_realtime_mark_final_failed(message, job)
        _logger.info("final render requested: thread=%s job=%s state=%s", self.id, job.id, job.state)
        return message, job

    def _fal_realtime_start(self, job):
        """Start a final render's job; a failure fails the job, and leaves the transaction usable.

        ``action_start`` runs in a savepoint: a database error inside it would otherwise abort the
        cursor, and every later statement of this request (the failure note, the answer) would fail too.
        """
        try:
            with self.env.cr.savepoint():
                job.action_start()
        except Exception as error:  # noqa: BLE001 - as the seed's queue does: the failed job says why
            _logger.warning("final render could not start: job=%s error=%s", job.id, error)
            job.invalidate_recordset()
            if job.state != "failed":  # the savepoint undid action_start's own record of the failure
                job.write({"state": "failed", "completed_at": fields.Datetime.now(),
                           "error_message": str(error) or type(error).__name__})

    def _fal_realtime_participants(self):
        """Who is in this conversation: its owner, and for a live canvas (a realtime thread) its followers.

        An ordinary AI chat is its owner's alone, followers or not (see the follower rule in ``security/``).

        :return: ``res.partner`` records
        """
        self.ensure_one()
        thread = self.sudo()
        if not thread.model_id.is_realtime:
            return thread.user_id.partner_id
        return thread.user_id.partner_id | thread.message_partner_ids

    def _create_generation_job_from_message(self, last_message):
        """Jobs of realtime threads take their result only from fal's signed webhook or from polling."""
        job = super()._create_generation_job_from_message(last_message)
        if self.model_id.is_realtime:
            job.sudo().fal_realtime_final = True
        return job

    def _fal_realtime_final_inputs(self, message):
        """Generation inputs for a final render of a realtime thread's user message.

        A message typed in the composer carries its prompt in the body only; llm_generate
        reads ``body_json``, so the prompt (and any seed) is put there.

        :param message: the user's ``mail.message``
        :return: dict of inputs for llm_fal_ai's generation
        :raise UserError: for the embedded preview app, or without any prompt
        """
        self._fal_realtime_check_final()
        inputs = dict(message.body_json or {}) if isinstance(message.body_json, dict) else {}
        if not inputs.get("prompt"):
            inputs["prompt"] = html2plaintext(message.body or "").strip()
        if not inputs["prompt"]:
            raise UserError(_("Type a prompt first: the final render needs one."))
        return inputs

    def _generate_response(self, message):
        """A message sent from the composer of a realtime thread renders through llm_fal_ai's own path."""
        self.ensure_one()
        if self.model_id.is_realtime:
            inputs = self._fal_realtime_final_inputs(message)
            if inputs != message.body_json:
                message.sudo().body_json = inputs
        return (yield from super()._generate_response(message))

    def prepare_generation_inputs(self, inputs, attachment_ids=None):
        """For realtime models, keep only what the model's normal endpoint accepts.

        llm_generate merges the thread's context (``thread_id``, the related record) into the inputs,
        and llm_fal_ai's job path forwards every key to fal; a realtime model's normal endpoint takes
        the fields of ``details['input_schema']`` (prompt and seed when it has none).
        """
        prepared = super().prepare_generation_inputs(inputs, attachment_ids=attachment_ids)
        if not self.model_id.is_realtime:
            return prepared
        schema = (self.model_id.details or {}).get("input_schema") or {}
        accepted = set(schema.get("properties") or ()) or FINAL_DEFAULT_FIELDS
        return {key: value for key, value in prepared.items() if key in accepted}
