"""A realtime thread is a live room: two and three people, each in their own browser, nobody reloading."""

from odoo.tests import tagged

from .room import RoomCase

LIVE = 2000  # ms: a kept frame or a comment reaches the others within this


@tagged("post_install", "-at_install")
class TestLiveRoom(RoomCase):
    def test_comments_and_kept_frames_reach_everyone_live(self):
        """A colleague's comment reaches the person drawing, a kept frame the colleague, each once, in < 2 s."""
        self.require_relay()
        result = self.run_browsers("live_messages", ["rt_owner", "rt_follower"], thread_id=self.thread.id)
        self.assertLess(result["comment_ms"], LIVE, result)
        self.assertLess(result["keep_ms"], LIVE, result)
        self.assertEqual(result["copies"], {"owner": 1, "owner_tab2": 1, "colleague": 1, "colleague_comment": 1})
