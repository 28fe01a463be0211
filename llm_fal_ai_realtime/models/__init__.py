from . import (
    fal_realtime_relay,
    llm_assistant,
    llm_fetch_models_line,
    llm_generation_job,
    llm_model,
    llm_provider,
    llm_provider_render_final,
    llm_thread,
    llm_thread_canvas,
    mail_message,
    res_config_settings,
    res_users,
)
