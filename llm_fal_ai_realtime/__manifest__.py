{
    "name": "LLM - fal.ai Realtime Live Canvas",
    "summary": "Watch the picture form as you type: fal.ai realtime models in the LLM chat",
    "version": "18.0.1.1.0",
    "category": "Productivity/Discuss",
    "author": "fal-realtime for Odoo",
    "license": "LGPL-3",
    "depends": [
        "base_setup",
        "llm",
        "llm_fal_ai",
        "llm_generate_job",
        "llm_thread",
        "llm_assistant",
    ],
    "external_dependencies": {
        "python": ["PyJWT", "websocket-client", "msgpack"],
    },
    "data": [
        "security/llm_fal_ai_realtime_security.xml",
        "views/res_config_settings_views.xml",
        "views/llm_model_views.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "llm_fal_ai_realtime/static/src/live_canvas/live_canvas.js",
            "llm_fal_ai_realtime/static/src/live_canvas/live_canvas.xml",
            "llm_fal_ai_realtime/static/src/live_canvas/live_canvas.scss",
            "llm_fal_ai_realtime/static/src/chat/llm_chat_container_patch.js",
            "llm_fal_ai_realtime/static/src/chat/llm_chat_container_patch.xml",
        ],
    },
    "installable": True,
    "application": False,
}
