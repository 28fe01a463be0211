import logging

from odoo import _, http
from odoo.exceptions import UserError
from odoo.http import request

from odoo.addons.mail.tools.discuss import Store

_logger = logging.getLogger(__name__)


class FalRealtimeController(http.Controller):
    @http.route("/llm_fal_ai_realtime/session", type="json", auth="user", methods=["POST"])
    def session(self, thread_id=None, model_id=None, **kwargs):
        """Issue a relay ticket for the live preview of a thread.

        :param thread_id: id of an ``llm.thread`` the user can read
        :param model_id: id of the realtime ``llm.model`` to open (defaults to the thread's model)
        :return: ``{url, ticket, app, session, role, expires_in}``; ``url`` carries no ticket
        """
        if kwargs:
            raise UserError(_("Unexpected parameters: %s", ", ".join(sorted(kwargs))))
        if model_id is None and isinstance(thread_id, int) and not isinstance(thread_id, bool):
            thread = request.env["llm.thread"].browse(thread_id)
            if thread.exists():
                thread.check_access("read")
                model_id = thread.model_id.id
        return request.env["llm.fal.realtime.relay"]._issue_session(thread_id, model_id)

    @http.route("/llm_fal_ai_realtime/keep", type="json", auth="user", methods=["POST"])
    def keep(self, thread_id=None, image=None, prompt="", seed=None, app=None):
        """Post the current live frame into the thread.

        :param thread_id: id of the ``llm.thread`` to post into
        :param image: the frame's bytes, base64-encoded (JPEG, PNG or WebP)
        :param prompt: the prompt that produced it
        :param seed: its seed
        :param app: the realtime app that rendered it
        :return: ``{message_id, store}``: the new message with its attachment and author, in the
            mail store format, so the chat shows the image at once
        """
        if not isinstance(thread_id, int) or isinstance(thread_id, bool) or thread_id <= 0:
            raise UserError(_("thread_id must be a positive integer."))
        thread = request.env["llm.thread"].browse(thread_id)
        if not thread.exists():
            raise UserError(_("This conversation does not exist (any more)."))
        message = thread.fal_realtime_keep_frame(image, prompt, seed=seed, app=app)
        store = Store()
        message._to_store(store)
        return {"message_id": message.id, "store": store.get_result()}
