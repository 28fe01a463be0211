from odoo import _, http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from odoo.addons.mail.tools.discuss import Store


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class FalRealtimeController(http.Controller):
    @staticmethod
    def _use_active_companies(context):
        """Work in the companies the web client has active, as mail's JSON routes do.

        A JSON route gets no user context by itself; without this, ``env.companies`` would be every
        company of the user, not the ones the company switcher has selected.

        :param context: the web client's user context (only ``allowed_company_ids`` is used), or None
        :raise UserError: when it is not a list of company ids
        """
        if context is None:
            return
        companies = context.get("allowed_company_ids") if isinstance(context, dict) else None
        if companies is None:
            return
        if not isinstance(companies, list) or not all(_is_id(company) for company in companies):
            raise UserError(_("allowed_company_ids must be a list of company ids."))
        request.update_context(allowed_company_ids=companies)

    @staticmethod
    def _check_attachment_ids(attachment_ids):
        if attachment_ids is not None and (
                not isinstance(attachment_ids, list) or not all(_is_id(att) for att in attachment_ids)):
            raise UserError(_("attachment_ids must be a list of attachment ids."))

    @staticmethod
    def _thread(thread_id):
        """The ``llm.thread`` with that id, or a UserError saying what is wrong with the id."""
        if not _is_id(thread_id):
            raise UserError(_("thread_id must be a positive integer."))
        thread = request.env["llm.thread"].browse(thread_id)
        if not thread.exists():
            raise UserError(_("This conversation does not exist (any more)."))
        return thread

    @http.route("/llm_fal_ai_realtime/session", type="json", auth="user", methods=["POST"])
    def session(self, thread_id=None, model_id=None, context=None, **kwargs):
        """Issue a relay ticket for the live preview of a thread, for the thread's own model.

        The app of a ticket is decided here, never by the browser: a tab that still shows an older model
        (another participant just switched it) is refused and told to reload the canvas's settings.

        :param thread_id: id of an ``llm.thread`` the user can read
        :param model_id: optional, the model the browser expects; it must be the thread's current model
        :param context: the web client's user context, for its active companies
        :return: ``{url, ticket, app, session, role, expires_in}``; ``url`` carries no ticket
        """
        if kwargs:
            raise UserError(_("Unexpected parameters: %s", ", ".join(sorted(kwargs))))
        self._use_active_companies(context)
        if model_id is not None and not _is_id(model_id):
            raise UserError(_("model_id must be a positive integer."))
        thread = self._thread(thread_id)
        thread.check_access("read")
        current = thread.sudo().model_id
        if model_id is not None and model_id != current.id:
            raise UserError(_("This conversation now uses %s: its live canvas opens that model.", current.name))
        return request.env["llm.fal.realtime.relay"]._issue_session(thread_id, current.id)

    @http.route("/llm_fal_ai_realtime/keep", type="json", auth="user", methods=["POST"])
    def keep(self, thread_id=None, image=None, prompt="", seed=None, app=None, attachment_ids=None, context=None):
        """Post the current live frame into the thread.

        :param thread_id: id of the ``llm.thread`` to post into
        :param image: the frame's bytes, base64-encoded (JPEG, PNG or WebP)
        :param prompt: the prompt that produced it
        :param seed: its seed
        :param app: the realtime app that rendered it
        :param attachment_ids: ids of files the user attached in the composer, sent with the frame
        :param context: the web client's user context, for its active companies
        :return: ``{message_id, store}``: the new message with its attachment and author, in the
            mail store format, so the chat shows the image at once
        """
        self._use_active_companies(context)
        self._check_attachment_ids(attachment_ids)
        thread = self._thread(thread_id)
        thread._fal_realtime_pending_attachments(attachment_ids)  # refused before the frame is posted
        message = thread.fal_realtime_keep_frame(image, prompt, seed=seed, app=app)
        thread._fal_realtime_attach(message, attachment_ids)
        store = Store()
        message._to_store(store)
        return {"message_id": message.id, "store": store.get_result()}

    @http.route("/llm_fal_ai_realtime/render_final", type="json", auth="user", methods=["POST"])
    def render_final(self, thread_id=None, prompt="", seed=None, context=None):
        """Render the prompt and seed at full quality with the model's normal fal endpoint.

        :param thread_id: id of the ``llm.thread`` whose model renders it
        :param prompt: the prompt of the frame on the canvas
        :param seed: its seed
        :param context: the web client's user context, for its active companies
        :return: ``{message_id, job_id, state, error, store}``: the request message (store format)
            and the generation job's state; ``error`` says why fal did not take it (state ``failed``)
        """
        self._use_active_companies(context)
        message, job = self._thread(thread_id).fal_realtime_render_final(prompt, seed=seed)
        store = Store()
        message._to_store(store)
        return {"message_id": message.id, "job_id": job.id, "state": job.state, "error": job.error_message or "",
                "store": store.get_result()}

    @http.route("/llm_fal_ai_realtime/canvas", type="json", auth="user", methods=["POST"])
    def canvas(self, thread_id=None, context=None):
        """Roles and the assistant's shaping of a thread's live canvas.

        :param thread_id: id of an ``llm.thread`` the user can read
        :param context: the web client's user context, for its active companies
        :return: see ``llm.thread.fal_realtime_canvas``
        """
        self._use_active_companies(context)
        return self._thread(thread_id).fal_realtime_canvas()

    @http.route("/llm_fal_ai_realtime/comment", type="json", auth="user", methods=["POST"])
    def comment(self, thread_id=None, body="", attachment_ids=None, context=None):
        """Post a comment on the picture from the composer: a plain message that starts no generation.

        :param thread_id: id of the ``llm.thread``
        :param body: the composer's text
        :param attachment_ids: ids of attachments the user uploaded in the composer
        :param context: the web client's user context, for its active companies
        :return: ``{message_id, store}``
        """
        self._use_active_companies(context)
        self._check_attachment_ids(attachment_ids)
        message = self._thread(thread_id).fal_realtime_comment(body, attachment_ids=attachment_ids)
        store = Store()
        message._to_store(store)
        return {"message_id": message.id, "store": store.get_result()}

    @http.route("/llm_fal_ai_realtime/pen", type="json", auth="user", methods=["POST"])
    def pen(self, thread_id=None, action=None, user_id=None, prompt="", seed=None, context=None):
        """Ask for the pen of a live canvas, answer a request, hand the pen over or take it.

        :param thread_id: id of the ``llm.thread``
        :param action: ``request`` (a viewer asks), ``give`` (the pen holder hands it to ``user_id``),
            ``decline`` (the pen holder says "Not now") or ``take`` (the owner, or the first asker once
            the pen is free)
        :param user_id: who gets the pen (``give``)
        :param prompt: the prompt on the canvas, so the new pen holder goes on from the same picture
        :param seed: its seed
        :param context: the web client's user context, for its active companies
        :return: ``{thread_id, driver, request}``
        """
        self._use_active_companies(context)
        thread = self._thread(thread_id)
        if action == "request":
            return thread.fal_realtime_request_pen()
        if action == "give":
            return thread.fal_realtime_give_pen(user_id, prompt=prompt, seed=seed)
        if action == "decline":
            return thread.fal_realtime_decline_pen()
        if action == "take":
            return thread.fal_realtime_take_pen(prompt=prompt, seed=seed)
        raise UserError(_("action must be 'request', 'give', 'decline' or 'take'."))

    @http.route("/llm_fal_ai_realtime/room", type="json", auth="user", methods=["POST"])
    def room(self, thread_id=None, action=None, tab=None, idle_seconds=0, context=None):
        """A tab with the live canvas open joins the thread's room, says it is still there, or leaves.

        :param thread_id: id of an ``llm.thread`` the user can read
        :param action: ``join``, ``beat`` or ``leave``
        :param tab: the tab's own random id
        :param idle_seconds: seconds since the person last typed or clicked there
        :param context: the web client's user context, for its active companies
        :return: see ``llm.thread._fal_realtime_room_state``
        """
        self._use_active_companies(context)
        return self._thread(thread_id).fal_realtime_room(action, tab, idle_seconds=idle_seconds)

    @http.route("/llm_fal_ai_realtime/attachment/upload", type="http", auth="user", methods=["POST"])
    def attachment_upload(self, ufile, thread_id=None, thread_model=None, **kwargs):
        """The composer's paperclip in a realtime thread, for every participant.

        mail's own upload route wants write access to the thread, which a follower watching the canvas
        does not have (they may read it and comment); their files would never reach the composer. The
        file is kept as a pending upload of the current user, which only they can send, with a comment
        or a kept frame, in this thread (``llm.thread._fal_realtime_pending_attachments``).

        :return: JSON ``{data}`` (the attachment in the mail store's format) or ``{error}``, as mail's route
        """
        try:
            if thread_model != "llm.thread" or not str(thread_id or "").isdigit():
                raise UserError(_("Files go to a realtime conversation."))
            thread = self._thread(int(thread_id))
            thread._fal_realtime_check_participant()
            if not thread._fal_realtime_is_room():
                raise UserError(_("Files go to a realtime conversation."))
            attachment = request.env["ir.attachment"].create({
                "name": ufile.filename, "raw": ufile.read(), "res_model": "mail.compose.message", "res_id": 0,
            })
        except (AccessError, UserError) as error:
            return request.make_json_response({"error": str(error)})
        return request.make_json_response({"data": Store(attachment).get_result()})
