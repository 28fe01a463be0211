from . import llm_fal_realtime_invite
