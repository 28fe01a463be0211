"""Upgrade to 18.0.1.2.0: followers read live canvases only, a stable ticket issuer, no retired secret kept.

- The follower rule's domain is rewritten from the module's data on update; it is set here too, so a
  database whose rule was marked not to be updated gets it all the same.
- The tickets' issuer is fixed now, to the base URL tickets have named so far, so nothing changes on
  the relay until an administrator decides it.
- The secret a rotation retired was kept in plain text; only its key id and overlap end are needed.
"""

import logging

from odoo import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)

FOLLOWER_RULE = "llm_fal_ai_realtime.llm_thread_rule_follower_read"
FOLLOWER_DOMAIN = "[('model_id.is_realtime', '=', True), ('message_partner_ids', 'in', [user.partner_id.id])]"
RETIRED_SECRET = "llm_fal_ai_realtime.previous_shared_secret"


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    rule = env.ref(FOLLOWER_RULE, raise_if_not_found=False)
    if rule and rule.domain_force != FOLLOWER_DOMAIN:
        rule.domain_force = FOLLOWER_DOMAIN
        _logger.info("follower rule limited to live canvases (upgrading from %s)", version)
    env["llm.fal.realtime.relay"]._issuer()
    params = env["ir.config_parameter"]
    if params.get_param(RETIRED_SECRET):
        params.set_param(RETIRED_SECRET, False)
        _logger.info("retired relay secret removed from the database; its key id and overlap end are kept")
