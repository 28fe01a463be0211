from . import (
    fal_realtime_relay,
    llm_generation_job,
    llm_model,
    llm_provider,
    llm_provider_render_final,
    llm_thread,
    res_config_settings,
    res_users,
)
