from . import (
    test_access,
    test_chat_ui,
    test_fetch_models,
    test_keep,
    test_render_final,
    test_rotation,
    test_secret_logging,
    test_session,
    test_settings,
)
