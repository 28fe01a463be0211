"""Several people in one realtime thread, each in their own browser, on Odoo's real bus.

Odoo's test server refuses websockets and never commits (so the bus's NOTIFY never fires); Odoo's own
bus tests (``bus.tests.common.WebsocketCase``) let websockets in and wake them by hand. This does the
same for every request: when a request's test cursor "commits", the websockets listening on the
channels it notified are told to fetch their new notifications, as the NOTIFY would have made them.

The browsers are real Chromium contexts driven by Playwright in the relay's Python (one context per
person, logged in with its own session cookie, no reload); see ``room_browser.py`` for the scenarios.
"""

import json
import logging
import os
import resource
import subprocess
from pathlib import Path
from unittest.mock import patch

from odoo.sql_db import TestCursor

from odoo.addons.bus.models.bus import dispatch, hashable
from odoo.addons.bus.websocket import WebsocketConnectionHandler

from .common import FalRealtimeCase
from .relay_process import RELAY_PYTHON_ENV

_logger = logging.getLogger(__name__)
BROWSER_SCRIPT = Path(__file__).with_name("room_browser.py")
_original_commit = TestCursor.commit


def _wake_websockets(channels):
    """What the bus's NOTIFY listener does: wake the websockets subscribed to these channels."""
    sockets = set()
    for channel in channels:
        sockets.update(dispatch._channels_to_ws.get(hashable(channel), ()))
    for socket in sockets:
        socket.trigger_notification_dispatching()


def _lift_memory_limit():
    """Odoo's server caps its address space (limit_memory_hard); Chromium needs more, as Odoo's own browser does."""
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _commit_and_wake(cursor):
    cursor.flush()  # runs the precommit hooks: the bus.bus rows are written here
    channels = list(cursor.postcommit.data.get("bus.bus.channels", ()))
    _original_commit(cursor)
    _wake_websockets(channels)


class RoomCase(FalRealtimeCase):
    """The realtime thread's people, each in their own browser, with Odoo's bus delivering."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.object(WebsocketConnectionHandler, "websocket_allowed", return_value=True))
        cls.startClassPatcher(patch.object(TestCursor, "commit", _commit_and_wake))
        cls.colleague = cls.follower
        cls.third = cls.env["res.users"].create({
            "login": "rt_third", "password": "rt_third", "name": "Realtime Third",
            "groups_id": [(6, 0, [cls.env.ref("base.group_user").id])],
        })
        cls.thread.sudo().message_subscribe(partner_ids=cls.third.partner_id.ids)

    def deliver_bus(self):
        """Send what this test's own transaction notified (not a request's) to the browsers now."""
        self.env.cr.flush()
        channels = list(self.env.cr.postcommit.data.pop("bus.bus.channels", ()))
        _wake_websockets(channels)

    def last_bus_id(self):
        """The newest bus notification's id, after this test's own have been delivered."""
        self.deliver_bus()
        return self.env["bus.bus"].sudo().search([], order="id desc", limit=1).id or 0

    def bus_notes(self, since, kind):
        """The notifications of type ``kind`` written to the bus since ``since``: ``{partner id: [payload, ...]}``."""
        self.deliver_bus()
        found = {}
        for note in self.env["bus.bus"].sudo().search([("id", ">", since)]):
            message = json.loads(note.message)
            if message["type"] == kind:
                found.setdefault(json.loads(note.channel)[-1], []).append(message["payload"])
        return found

    def run_browsers(self, scenario, logins, timeout=240, **params):
        """Run ``scenario`` of room_browser.py with one browser context per login; return what it reports.

        :param scenario: the scenario function's name
        :param logins: the users, each logged in through /web/login in its own context (password = login)
        :param params: passed to the scenario (thread ids, ...)
        :return: the scenario's result (timings in ms, ...)
        """
        python = os.environ.get(RELAY_PYTHON_ENV)
        self.assertTrue(python, f"{RELAY_PYTHON_ENV} is not set: run the Odoo tests through scripts/test-odoo")
        self.env.cr.flush()
        self.env.cr.clear()
        config = {"base_url": self.base_url(), "request_key": self.http_request_key, "logins": logins,
                  "scenario": scenario, "params": params,
                  "screenshots": os.environ.get("FAL_REALTIME_ROOM_SCREENSHOTS", "")}
        process = subprocess.run([python, str(BROWSER_SCRIPT)], input=json.dumps(config), capture_output=True,
                                 text=True, timeout=timeout, check=False,
                                 preexec_fn=_lift_memory_limit)  # noqa: PLW1509 - as Odoo's ChromeBrowser
        self._wait_remaining_requests()
        lines = process.stdout.strip().splitlines()
        self.assertEqual(process.returncode, 0, f"{scenario} failed:\n{process.stdout[-4000:]}\n"
                                                f"{process.stderr[-4000:]}")
        result = json.loads(lines[-1])
        _logger.info("%s: %s", scenario, result)
        return result
