from . import controllers, models, wizard


def post_init_hook(env):
    """Set the tickets' issuer once, from the base URL at install time (it never follows it afterwards)."""
    env["llm.fal.realtime.relay"]._issuer()
