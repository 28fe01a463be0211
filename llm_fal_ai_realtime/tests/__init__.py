from . import (
    test_access,
    test_canvas_narrow_and_translated,
    test_chat_ui,
    test_fetch_models,
    test_keep,
    test_live_thread,
    test_render_final,
    test_render_final_webhook,
    test_render_final_states,
    test_secret_logging,
    test_session,
    test_settings,
)
