"""The live canvas side of a realtime thread: who holds the pen, comments, and the assistant's shaping.

A realtime thread has one driver (the person whose typing draws the picture: the owner, or whoever
the owner handed the pen to) and viewers (its followers). The composer never starts a generation
in such a thread: the driver's Enter keeps the frame (in the browser), a viewer's Enter posts a
comment. The thread's assistant, when its model is realtime, wraps the composer text in its
prompt template and sets the realtime inputs from its default values.
"""

import logging

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import plaintext2html

from odoo.addons.llm_assistant.utils import render_template

_logger = logging.getLogger(__name__)

MAX_COMMENT_CHARS = 4000
PEN_NOTIFICATION = "llm_fal_ai_realtime/pen"
PROMPT_MARKER = "\x00prompt\x00"
SEED_POLICIES = ("fixed", "random")
# Assistant default value -> (canvas input, check); anything else in default_values is for the template.
CANVAS_INPUTS = {
    "steps": ("steps", lambda v: _is_int(v) and 1 <= v <= 50),
    "num_inference_steps": ("steps", lambda v: _is_int(v) and 1 <= v <= 50),
    "width": ("width", lambda v: _is_int(v) and 64 <= v <= 2048),
    "height": ("height", lambda v: _is_int(v) and 64 <= v <= 2048),
    "strength": ("strength", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1),
    "seed": ("seed", lambda v: _is_int(v) and 0 <= v <= 2**31 - 1),
    "seed_policy": ("seed_policy", lambda v: v in SEED_POLICIES),
}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class LLMThread(models.Model):
    _inherit = "llm.thread"

    fal_realtime_driver_id = fields.Many2one(
        "res.users",
        string="Pen holder",
        help="Who draws the live canvas of this conversation; empty: its owner.",
        ondelete="set null",
        copy=False,
    )
    fal_realtime_pen_request_id = fields.Many2one(
        "res.users",
        string="Asks for the pen",
        help="A participant who asked the pen holder for the live canvas.",
        ondelete="set null",
        copy=False,
    )

    # ------------------------------------------------------------------ roles

    def _fal_realtime_driver(self):
        """The user who draws the live canvas: the pen holder, or the owner when nobody holds it."""
        self.ensure_one()
        thread = self.sudo()
        return thread.fal_realtime_driver_id or thread.user_id

    def _fal_realtime_is_driver(self, user=None):
        return self._fal_realtime_driver() == (user or self.env.user)

    def _fal_realtime_check_participant(self):
        """The current user may read the thread (owner, follower, manager), else AccessError."""
        self.ensure_one()
        self.check_access("read")

    # ------------------------------------------------------------------ composer

    def generate(self, user_message_body=None, attachment_ids=None, **kwargs):
        """Nothing generates from the composer of a realtime thread: what was typed is kept as a comment.

        The chat's composer keeps the frame (driver) or posts a comment (viewers) without coming here;
        this is the safety net for any other caller of llm_thread's generate route, so it never ends
        in an error and never loses the text.
        """
        self.ensure_one()
        if not self.model_id.is_realtime:
            return (yield from super().generate(user_message_body, attachment_ids=attachment_ids, **kwargs))
        if not (user_message_body or attachment_ids):
            return False
        message = self.fal_realtime_comment(user_message_body or "", attachment_ids=attachment_ids)
        yield {"type": "message_create", "message": message.to_store_format()}
        return message

    def fal_realtime_comment(self, body, attachment_ids=None):
        """Post a participant's comment on the picture: a plain message, never a prompt for a generation.

        :param body: the text typed in the composer
        :param attachment_ids: ids of attachments already uploaded by the user
        :return: the new ``mail.message`` (no ``llm_role``, so no generation reads it)
        :raise UserError: empty or too long
        """
        self.ensure_one()
        self._fal_realtime_check_participant()
        if not isinstance(body, str) or len(body) > MAX_COMMENT_CHARS:
            raise UserError(_("A comment must be text of at most %s characters.", MAX_COMMENT_CHARS))
        if not body.strip() and not attachment_ids:
            raise UserError(_("Type a comment first."))
        attachments = self._fal_realtime_pending_attachments(attachment_ids)
        values = {"attachment_ids": attachments.ids} if attachments else {}
        # A note: people talk about the picture in the thread, nobody gets an email for each remark.
        return self.message_post(
            body=plaintext2html(body.strip()),
            message_type="comment",
            subtype_xmlid="mail.mt_note",
            **self._fal_realtime_author(),
            **values,
        )

    def _fal_realtime_author(self):
        """``author_id`` and ``email_from`` for a message by the current user.

        mail refuses to post for an author without an email address; a colleague who has none can
        still comment on the picture or keep a frame, under their name.
        """
        partner = self.env.user.partner_id
        return {"author_id": partner.id, "email_from": partner.email_formatted or partner.name}

    # ------------------------------------------------------------------ the pen

    def fal_realtime_request_pen(self):
        """A viewer asks the pen holder for the pen; the pen holder is told on the bus.

        The first asker keeps their place: a second one is told to wait for the answer.
        """
        self.ensure_one()
        self._fal_realtime_check_participant()
        if self._fal_realtime_is_driver():
            raise UserError(_("You already hold the pen."))
        waiting = self.sudo().fal_realtime_pen_request_id
        if waiting and waiting != self.env.user:
            raise UserError(_("%s asked for the pen first: wait for the answer.", waiting.name))
        self.sudo().fal_realtime_pen_request_id = self.env.user
        _logger.info("pen requested: thread=%s user=%s", self.id, self.env.uid)
        self._fal_realtime_notify_pen()
        return self._fal_realtime_pen_state()

    def fal_realtime_decline_pen(self):
        """"Not now": the pen holder (or the owner) keeps the pen; the asker is told on the bus."""
        self.ensure_one()
        self._fal_realtime_check_participant()
        thread = self.sudo()
        if not (self._fal_realtime_is_driver() or thread.user_id == self.env.user):
            raise AccessError(_("Only the person holding the pen can answer a request for it."))
        asker = thread.fal_realtime_pen_request_id
        if not asker:
            raise UserError(_("Nobody is asking for the pen."))
        thread.fal_realtime_pen_request_id = False
        _logger.info("pen request declined: thread=%s by=%s asker=%s", self.id, self.env.uid, asker.id)
        self._fal_realtime_notify_pen(declined={"id": asker.id, "by": self.env.user.name})
        return self._fal_realtime_pen_state()

    def fal_realtime_take_pen(self, prompt="", seed=None):
        """Take the pen: the owner always can; the first asker (or anyone, when nobody asked) once it is free.

        The pen is free when its holder has closed the canvas or stayed idle past the configured time.

        :raise UserError: the pen is not free, or someone else asked first
        """
        self.ensure_one()
        self._fal_realtime_check_participant()
        thread = self.sudo()
        if thread.user_id == self.env.user:
            return self.fal_realtime_give_pen(self.env.uid, prompt=prompt, seed=seed)
        if self._fal_realtime_is_driver():
            raise UserError(_("You already hold the pen."))
        if not self._fal_realtime_pen_free():
            raise UserError(_("%s is drawing: ask for the pen.", self._fal_realtime_driver().name))
        asker = thread.fal_realtime_pen_request_id
        if asker and asker != self.env.user:
            raise UserError(_("%s asked for the pen first.", asker.name))
        prompt, seed = self._fal_realtime_check_prompt_seed(prompt or "", seed)
        thread.write({"fal_realtime_driver_id": self.env.uid, "fal_realtime_pen_request_id": False})
        _logger.info("free pen taken: thread=%s user=%s", self.id, self.env.uid)
        self._fal_realtime_notify_pen(prompt=prompt, seed=seed)
        return self._fal_realtime_pen_state()

    def fal_realtime_give_pen(self, user_id, prompt="", seed=None):
        """The pen holder (or the owner, who can always take it back) hands the pen to a participant.

        :param user_id: the participant who draws from now on
        :param prompt: the prompt on the canvas, so the new pen holder goes on from the same picture
        :param seed: its seed
        :raise AccessError: the current user neither holds the pen nor owns the thread
        :raise UserError: the user is no participant of the thread
        """
        self.ensure_one()
        self._fal_realtime_check_participant()
        thread = self.sudo()
        if not (self._fal_realtime_is_driver() or thread.user_id == self.env.user):
            raise AccessError(_("Only the person holding the pen can hand it over."))
        if not _is_int(user_id):
            raise UserError(_("user_id must be a user id."))
        user = self.env["res.users"].sudo().browse(user_id).exists()
        if not user or not (user == thread.user_id or user.partner_id in thread.message_partner_ids):
            raise UserError(_("The pen can only go to someone who follows this conversation."))
        prompt, seed = self._fal_realtime_check_prompt_seed(prompt or "", seed)
        thread.write({
            "fal_realtime_driver_id": False if user == thread.user_id else user.id,
            "fal_realtime_pen_request_id": False,
        })
        _logger.info("pen handed over: thread=%s from=%s to=%s", self.id, self.env.uid, user.id)
        self._fal_realtime_notify_pen(prompt=prompt, seed=seed)
        return self._fal_realtime_pen_state()

    def _fal_realtime_pen_state(self):
        thread = self.sudo()
        driver = self._fal_realtime_driver()
        request = thread.fal_realtime_pen_request_id
        return {
            "thread_id": self.id,
            "driver": {"id": driver.id, "name": driver.name},
            "request": {"id": request.id, "name": request.name} if request else False,
        }

    def _fal_realtime_notify_pen(self, prompt="", seed=None, declined=False):
        """Tell everyone in the room who holds the pen, who asks for it, and a request's answer.

        :param prompt: the prompt handed over with the pen, for the new holder's composer
        :param seed: its seed
        :param declined: ``{id, by}`` when the holder said "Not now" to user ``id``
        """
        payload = dict(self._fal_realtime_room_state(), prompt=prompt, seed=seed, declined=declined)
        self._fal_realtime_send(PEN_NOTIFICATION, payload)

    # ------------------------------------------------------------------ render final: before and after

    def _fal_realtime_check_final_ready(self):
        """What can be checked before a final render is submitted, with what to fix and where.

        :raise UserError: the model's provider has no API key
        """
        self.ensure_one()
        if not self.sudo().model_id.provider_id.api_key:
            raise UserError(_("The final render needs fal.ai: set the fal.ai API key of provider %s in "
                              "LLM > Configuration > Providers.", self.sudo().model_id.provider_id.name))

    def _fal_realtime_mark_final_failed(self, message, job):
        """Mark a final render's request message as failed, in its body, so it says so after a reload too."""
        note = Markup("<p class='o_live_canvas_final_failed text-danger small'>%s</p>") % _(
            "Final render failed: %s", job.error_message or _("fal.ai gave no reason"))
        message.sudo().write({"body": message.body + note, "is_error": True})

    def _fal_realtime_final_failure(self):
        """The thread's last final render, when it failed: what the canvas offers to retry.

        :return: ``{message_id, error, prompt, seed}`` or False
        """
        job = self.env["llm.generation.job"].sudo().search([("thread_id", "=", self.id)], order="id desc", limit=1)
        if not job or job.state != "failed":
            return False
        inputs = job.input_message_id.body_json if isinstance(job.input_message_id.body_json, dict) else {}
        return {"message_id": job.input_message_id.id, "error": job.error_message or "",
                "prompt": inputs.get("prompt") or "", "seed": inputs.get("seed")}

    # ------------------------------------------------------------------ the canvas

    def fal_realtime_canvas(self):
        """What the live canvas of this thread needs besides a ticket: roles, the assistant's shaping.

        :return: ``{role, can_keep, can_take_pen, can_render_final, driver, request, watchers, pen_free,
            assistant, prompt_prefix, prompt_suffix, inputs}``; the composer text is sent as
            ``prompt_prefix + text + prompt_suffix``
        """
        self.ensure_one()
        self._fal_realtime_check_participant()
        drives = self._fal_realtime_is_driver()
        owns = self.sudo().user_id == self.env.user
        assistant = self.sudo().assistant_id
        prefix, suffix, inputs = "", "", {}
        if assistant and assistant.model_id.is_realtime:
            prefix, suffix = self._fal_realtime_prompt_parts(assistant)
            inputs = self._fal_realtime_assistant_inputs(assistant)
        room = self._fal_realtime_room_state()
        asker = room["request"]
        return dict(
            room,
            role="driver" if drives else "viewer",
            can_keep=drives,
            can_take_pen=not drives and (owns or room["pen_free"] and (not asker or asker["id"] == self.env.uid)),
            can_render_final=drives and owns and self.model_id.is_realtime
            and self.model_id.realtime_app_id != "local/preview",
            assistant={"id": assistant.id, "name": assistant.name} if assistant else False,
            prompt_prefix=prefix,
            prompt_suffix=suffix,
            inputs=inputs,
            final_failure=self._fal_realtime_final_failure() if drives and owns else False,
        )

    @api.model
    def _fal_realtime_prompt_parts(self, assistant):
        """The assistant's prompt template around the composer text, e.g. ``{{prompt}}, watercolour``.

        The template is rendered with the assistant's default values and a marker for ``prompt``; what
        comes before and after the marker wraps the text. A template without ``{{prompt}}`` follows it.
        """
        template = assistant.prompt_id.template if assistant.prompt_id else ""
        if not template:
            return "", ""
        values = {key: value for key, value in assistant.get_evaluated_default_values({}).items()
                  if key not in CANVAS_INPUTS}
        rendered = render_template(template=template, context={**values, "prompt": PROMPT_MARKER}).strip()
        if PROMPT_MARKER not in rendered:
            return "", f", {rendered}" if rendered else ""
        prefix, _marker, suffix = rendered.partition(PROMPT_MARKER)
        return prefix, suffix.replace(PROMPT_MARKER, "")

    @api.model
    def _fal_realtime_assistant_inputs(self, assistant):
        """The realtime inputs an assistant's default values set (steps, width, height, strength, seed, seed policy).

        Values of the wrong type or range are left out (and logged), so the canvas keeps its own default.
        """
        inputs = {}
        for key, value in assistant.get_evaluated_default_values({}).items():
            if key not in CANVAS_INPUTS:
                continue
            name, valid = CANVAS_INPUTS[key]
            if valid(value):
                inputs[name] = value
            else:
                _logger.warning("assistant %s: default value %s=%r is not a valid live canvas input",
                                assistant.id, key, value)
        return inputs
