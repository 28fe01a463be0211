from . import (
    fal_realtime_relay,
    llm_fetch_models_line,
    llm_model,
    llm_provider,
    llm_thread,
    res_config_settings,
    res_users,
)
