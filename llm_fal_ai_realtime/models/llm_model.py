from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .fal_realtime_relay import APP_ID_RE, LOCAL_PREVIEW_APP, app_label

# fal realtime apps that only transform an input image: the live canvas sends prompts, no image.
IMAGE_INPUT_APPS = frozenset({"fal-ai/lcm-sd15-i2i"})
# What the realtime markers (Fetch Models, model lists, the chat's picker) say.
REALTIME_KINDS = [("fal", "Realtime"), ("preview", "Realtime · relay's CPU preview")]


def realtime_kind(app):
    """``preview`` for the relay's embedded app, ``fal`` for a fal realtime app, False for none."""
    if not app:
        return False
    return "preview" if app == LOCAL_PREVIEW_APP else "fal"


class LLMModel(models.Model):
    _inherit = "llm.model"

    realtime_app_id = fields.Char(
        string="Realtime App",
        compute="_compute_realtime_app_id",
        store=True,
        readonly=False,
        help="fal realtime app this model opens over the relay, e.g. fal-ai/fast-lcm-diffusion "
        "(local/preview is the relay's embedded preview app). Empty: not a realtime model.",
    )
    is_realtime = fields.Boolean(
        string="Realtime",
        compute="_compute_is_realtime",
        store=True,
        help="The chat shows a live canvas for threads using this model.",
    )

    @api.depends("details")
    def _compute_realtime_app_id(self):
        """Take the app id from ``details['realtime']['app_id']`` (set by Fetch Models)."""
        for model in self:
            realtime = (model.details or {}).get("realtime") if isinstance(model.details, dict) else None
            app = realtime.get("app_id") if isinstance(realtime, dict) else None
            model.realtime_app_id = app or model.realtime_app_id or False

    realtime_kind = fields.Selection(
        REALTIME_KINDS,
        string="Realtime Kind",
        compute="_compute_realtime_kind",
        help="fal.ai realtime model, or the relay's embedded CPU preview (not a fal.ai model).",
    )

    @api.depends("realtime_app_id")
    def _compute_is_realtime(self):
        for model in self:
            model.is_realtime = bool(model.realtime_app_id)

    @api.depends("realtime_app_id")
    def _compute_realtime_kind(self):
        for model in self:
            model.realtime_kind = realtime_kind(model.realtime_app_id)

    @api.depends("realtime_app_id")
    def _compute_display_name(self):
        """``local/preview`` says what it is wherever a model is picked: the relay's CPU preview, not fal's."""
        super()._compute_display_name()
        for model in self:
            if model.realtime_app_id == LOCAL_PREVIEW_APP:
                model.display_name = app_label(self.env, model.name)

    @api.constrains("realtime_app_id")
    def _check_realtime_app_id(self):
        for model in self:
            app = model.realtime_app_id
            if app and not APP_ID_RE.match(app):
                raise ValidationError(_("'%(app)s' is not a realtime app id (expected owner/alias, e.g. %(example)s).",
                                        app=app, example="fal-ai/fast-lcm-diffusion"))
            if app in IMAGE_INPUT_APPS:
                raise ValidationError(_("%s turns an input image into another one, and the live canvas only sends "
                                        "prompts: choose a text-to-image realtime app such as "
                                        "fal-ai/fast-lcm-diffusion.", app))

    @api.model
    def _fal_realtime_company_domain(self):
        """Models of providers in the active companies (``env.companies``, the company switcher's choice)."""
        return [("provider_id.company_id", "in", self.env.companies.ids)]

    def _check_fal_realtime_company(self):
        """Refuse a model whose provider belongs to none of the active companies.

        :raise AccessError: naming the model, when its provider's company is not active
        """
        for model in self:
            if model.sudo().provider_id.company_id not in self.env.companies:
                raise AccessError(_("The provider of model %s belongs to a company that is not active: switch to "
                                    "that company to use its live preview.", model.name))

    @api.model
    def fal_realtime_apps(self):
        """The realtime models the chat may open a live canvas for, in the active companies.

        :return: list of ``{id, app, can_render_final}``; the embedded preview app has no final render
        """
        models = self.search([("is_realtime", "=", True)] + self._fal_realtime_company_domain())
        labels = dict(self._fields["realtime_kind"]._description_selection(self.env))
        return [{"id": model.id, "app": model.realtime_app_id, "kind": model.realtime_kind,
                 "label": labels[model.realtime_kind],
                 "can_render_final": model.realtime_app_id != LOCAL_PREVIEW_APP} for model in models]

    @api.model_create_multi
    def create(self, vals_list):
        """A local/preview model (from Fetch Models) gives the shipped "Live sketch" assistant its model."""
        models = super().create(vals_list)
        self.env["llm.assistant"]._fal_realtime_link_live_sketch(models)
        return models

    @api.model
    def fal_realtime_new_thread(self):
        """Open a new conversation of the current user on a realtime model (the chat's "New live canvas").

        The model is the first one, in the order of the allowed apps in Settings, whose app is
        allowed and whose provider is in an active company.

        :return: the new ``llm.thread``'s id
        :raise UserError: when no realtime model can be opened, saying what an administrator should do
        """
        allowed = self.env["llm.fal.realtime.relay"]._get_config(raise_if_incomplete=False)["allowed_apps"]
        models = self.search([("is_realtime", "=", True)] + self._fal_realtime_company_domain())
        for app in allowed:
            model = models.filtered(lambda m, app=app: m.realtime_app_id == app)[:1]
            if model:
                break
        else:
            raise UserError(_("No realtime model can be opened here: an administrator should use Fetch Models on a "
                              "fal.ai provider and allow a realtime app in Settings > fal.ai Realtime."))
        thread = self.env["llm.thread"].create({
            "name": _("Live canvas %s", fields.Datetime.context_timestamp(self, fields.Datetime.now())
                      .strftime("%Y-%m-%d %H:%M")),
            "provider_id": model.provider_id.id,
            "model_id": model.id,
        })
        return thread.id
