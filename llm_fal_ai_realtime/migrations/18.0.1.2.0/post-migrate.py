"""Upgrade to 18.0.1.2.0: followers read live canvases only.

- The follower rule's domain is rewritten from the module's data on update; it is set here too, so a
  database whose rule was marked not to be updated gets it all the same.
"""

import logging

from odoo import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)

FOLLOWER_RULE = "llm_fal_ai_realtime.llm_thread_rule_follower_read"
FOLLOWER_DOMAIN = "[('model_id.is_realtime', '=', True), ('message_partner_ids', 'in', [user.partner_id.id])]"


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    rule = env.ref(FOLLOWER_RULE, raise_if_not_found=False)
    if rule and rule.domain_force != FOLLOWER_DOMAIN:
        rule.domain_force = FOLLOWER_DOMAIN
        _logger.info("follower rule limited to live canvases (was %s)", version)
