"""A realtime thread is a live room: what happens in it reaches everyone in it, on Odoo's bus.

odoo-llm streams a thread's new messages only to the tab that asked for a generation; a realtime
thread is watched by several people at once, so this pushes what happens in it to its participants
(owner and followers) as it happens:

- ``llm_fal_ai_realtime/message``: a new or changed message (kept frame, comment, final render or its
  failure), in the mail store's format, so every open chat shows it without a reload;
- ``llm_fal_ai_realtime/room``: who has the canvas open right now (tabs beat every few seconds), who
  holds the pen and whether it is free (its holder left or went idle);
- ``llm_fal_ai_realtime/canvas``: the thread's model or assistant changed, so every canvas reloads
  its settings and opens the new model's live session;
- ``llm_fal_ai_realtime/draw``: to one person's own tabs only, which of them draws now ("Draw here").

The partners are read when the notification is sent, so someone removed from the thread stops
receiving at once.
"""

import logging
import re
from datetime import timedelta

from odoo import Command, _, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression

from odoo.addons.mail.tools.discuss import Store

from .fal_realtime_watcher import HEARTBEAT_SECONDS

_logger = logging.getLogger(__name__)

MESSAGE_NOTIFICATION = "llm_fal_ai_realtime/message"
ROOM_NOTIFICATION = "llm_fal_ai_realtime/room"
CANVAS_NOTIFICATION = "llm_fal_ai_realtime/canvas"
DRAW_NOTIFICATION = "llm_fal_ai_realtime/draw"
PARAM_PEN_IDLE = "llm_fal_ai_realtime.pen_idle_seconds"
DEFAULT_PEN_IDLE = 300
TAB_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ROOM_ACTIONS = ("join", "beat", "draw", "leave")
CANVAS_FIELDS = frozenset({"model_id", "assistant_id", "prompt_id"})
PENDING_MESSAGES = "llm_fal_ai_realtime.messages"


class LLMThread(models.Model):
    _inherit = "llm.thread"

    # ------------------------------------------------------------------ who is in it

    def _fal_realtime_is_room(self):
        """Only realtime threads are rooms; other llm.thread keep llm_thread's own behaviour."""
        return bool(self.sudo().model_id.is_realtime)

    def _fal_realtime_send(self, notification, payload):
        for partner in self._fal_realtime_participants():
            partner._bus_send(notification, payload)

    # ------------------------------------------------------------------ messages

    def message_post(self, **kwargs):
        """Every message posted in a realtime thread reaches the participants' open chats."""
        message = super().message_post(**kwargs)
        if len(self) == 1 and self._fal_realtime_is_room():
            self._fal_realtime_push_message(message)
        return message

    def _fal_realtime_push_message(self, message):
        """Send ``message`` (with its attachments and author) in the mail store's format to the room.

        Sent as the transaction commits, so what is added to the message after it is posted (the
        composer's attachments beside a kept frame, a failure note) travels with it, once. The author's
        own tabs get it too: the one that posted it has it already and skips it by id.
        """
        pending = self.env.cr.precommit.data.setdefault(PENDING_MESSAGES, {})
        if not pending:
            self.env.cr.precommit.add(self._fal_realtime_send_pending_messages)
        pending[message.id] = self.id

    def _fal_realtime_send_pending_messages(self):
        pending = self.env.cr.precommit.data.pop(PENDING_MESSAGES, {})
        Message = self.env["mail.message"].sudo()
        shown = Message.search(expression.AND([[("id", "in", list(pending))], Message._fal_realtime_chat_domain()]))
        for message in shown:  # what the chat would not list (a system notice) stays out of it
            thread = self.sudo().browse(pending[message.id]).exists()
            if not thread:
                continue
            store = Store()
            message._to_store(store)
            thread._fal_realtime_send(MESSAGE_NOTIFICATION, {
                "thread_id": thread.id, "message_id": message.id, "store": store.get_result(),
            })

    def _fal_realtime_attach(self, message, attachment_ids):
        """Link the files the current user attached in the composer to ``message``.

        :param attachment_ids: ids of attachments this user uploaded and has not sent yet
        :raise UserError: one of them is not such an attachment
        """
        attachments = self._fal_realtime_pending_attachments(attachment_ids)
        if attachments:
            attachments.write({"res_model": self._name, "res_id": self.id})
            message.sudo().write({"attachment_ids": [Command.link(attachment.id) for attachment in attachments]})

    def _fal_realtime_pending_attachments(self, attachment_ids):
        """The composer's uploads of the current user, or a UserError naming what is wrong."""
        if not attachment_ids:
            return self.env["ir.attachment"]
        attachments = self.env["ir.attachment"].sudo().browse(attachment_ids).exists()
        pending = attachments.filtered(
            lambda attachment: attachment.create_uid == self.env.user
            and (attachment.res_model, attachment.res_id) in (("mail.compose.message", 0), (self._name, self.id))
        )
        if len(pending) != len(set(attachment_ids)):
            raise UserError(_("Only files you have just attached in the composer can be sent with a message."))
        return pending

    # ------------------------------------------------------------------ the canvas settings

    def write(self, vals):
        """A new model or assistant on a realtime thread: every canvas in the room reloads its settings."""
        rooms = self.filtered(lambda thread: thread._fal_realtime_is_room()) if CANVAS_FIELDS & set(vals) else None
        result = super().write(vals)
        if rooms is not None:
            for thread in rooms | self.filtered(lambda thread: thread._fal_realtime_is_room()):
                thread._fal_realtime_send(CANVAS_NOTIFICATION, {
                    "thread_id": thread.id, "model_id": thread.sudo().model_id.id,
                    "assistant_id": thread.sudo().assistant_id.id,
                })
        return result

    # ------------------------------------------------------------------ the room

    def fal_realtime_room(self, action, tab, idle_seconds=0):
        """A tab joins the room, beats (it is still open, idle for so long), draws, or leaves it.

        :param action: ``join``, ``beat``, ``draw`` (this tab takes the drawing over from the user's
            other tabs, which are told) or ``leave``
        :param tab: the tab's own random id (8-64 letters, digits, ``_`` or ``-``)
        :param idle_seconds: seconds since the person last typed or clicked in that tab
        :return: the room's state, see :meth:`_fal_realtime_room_state`
        :raise UserError: a bad action, tab or idle time
        """
        self.ensure_one()
        self._fal_realtime_check_participant()
        if action not in ROOM_ACTIONS:
            raise UserError(_("action must be one of %s.", ", ".join(ROOM_ACTIONS)))
        if not isinstance(tab, str) or not TAB_RE.match(tab):
            raise UserError(_("tab must be 8-64 letters, digits, '_' or '-'."))
        if not isinstance(idle_seconds, int) or isinstance(idle_seconds, bool) or idle_seconds < 0:
            raise UserError(_("idle_seconds must be a non-negative integer."))
        before = self._fal_realtime_room_state()
        Watcher = self.env["llm.fal.realtime.watcher"].sudo()
        mine = Watcher.search([("thread_id", "=", self.id), ("tab", "=", tab)])
        if mine and mine.user_id != self.env.user:
            raise UserError(_("This tab id is someone else's: make a new one."))
        now = fields.Datetime.now()
        active = now - timedelta(seconds=min(idle_seconds, 10 * 365 * 86400))
        if action == "leave":
            mine.unlink()
        elif mine:
            mine.write({"last_seen": now, "last_active": active})
        else:
            Watcher.create({"thread_id": self.id, "user_id": self.env.uid, "tab": tab, "last_seen": now,
                            "last_active": active})
        state = self._fal_realtime_room_state()
        if state != before:
            self._fal_realtime_send(ROOM_NOTIFICATION, state)
        if action == "draw":
            if not self._fal_realtime_is_driver():
                raise UserError(_("%s holds the pen: ask for it.", self._fal_realtime_driver().name))
            self.env.user.partner_id._bus_send(DRAW_NOTIFICATION, {"thread_id": self.id, "tab": tab})
        return state

    def _fal_realtime_watchers(self):
        """The tabs that are open on this thread now.

        Stale rows are only skipped here: the autovacuum deletes them. Two people's beats deleting the
        same stale row at once made one request fail to serialize (retried, but logged as an error).
        """
        Watcher = self.env["llm.fal.realtime.watcher"].sudo()
        return Watcher.search([("thread_id", "=", self.id), ("last_seen", ">=", Watcher._stale_before())])

    def _fal_realtime_pen_idle_seconds(self):
        """How long the pen holder may stay idle before the pen is free (system parameter, default 5 min)."""
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM_PEN_IDLE, DEFAULT_PEN_IDLE)
        try:
            return max(int(value), HEARTBEAT_SECONDS)
        except (TypeError, ValueError):
            _logger.warning("%s is not a number of seconds: %r", PARAM_PEN_IDLE, value)
            return DEFAULT_PEN_IDLE

    def _fal_realtime_pen_free(self, watchers=None):
        """The pen holder has no tab open on the thread, or has been idle in all of them for too long."""
        watchers = self._fal_realtime_watchers() if watchers is None else watchers
        driver = self._fal_realtime_driver()
        idle_before = fields.Datetime.now() - timedelta(seconds=self._fal_realtime_pen_idle_seconds())
        return not watchers.filtered(lambda tab: tab.user_id == driver and tab.last_active >= idle_before)

    def _fal_realtime_room_state(self):
        """Who watches (each person once, with how many tabs), who holds the pen, and whether it is free.

        :return: ``{thread_id, watchers: [{id, name, tabs, pen}], driver, request, pen_free}``
        """
        watchers = self._fal_realtime_watchers()
        driver = self._fal_realtime_driver()
        people = []
        for user in watchers.user_id.sorted(lambda user: (user != driver, user.name or "")):
            people.append({"id": user.id, "name": user.name, "tabs": len(watchers.filtered(
                lambda tab, user=user: tab.user_id == user)), "pen": user == driver})
        return dict(self._fal_realtime_pen_state(), watchers=people,
                    pen_free=self._fal_realtime_pen_free(watchers))
