{
    "name": "LLM - fal.ai Realtime Live Canvas",
    "summary": "Watch the picture form as you type: fal.ai realtime models in the LLM chat",
    "version": "18.0.1.2.0",
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
        "python": ["PyJWT", "websocket-client", "msgpack", "cryptography"],
    },
    "data": [
        "security/llm_fal_ai_realtime_security.xml",
        "security/llm_fal_realtime_watcher_access.xml",
        "security/llm_fal_realtime_invite_access.xml",
        "views/res_config_settings_views.xml",
        "views/llm_model_views.xml",
        "views/llm_assistant_views.xml",
        "views/llm_generation_job_views.xml",
        "views/llm_fal_realtime_invite_views.xml",
        "data/llm_assistant_data.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "llm_fal_ai_realtime/static/src/chat/call_route.js",
            "llm_fal_ai_realtime/static/src/chat/live_room.js",
            "llm_fal_ai_realtime/static/src/chat/live_canvas_store.js",
            "llm_fal_ai_realtime/static/src/chat/live_canvas_invite.js",
            "llm_fal_ai_realtime/static/src/chat/llm_chat_container_patch.js",
            "llm_fal_ai_realtime/static/src/chat/llm_chat_container_patch.xml",
            "llm_fal_ai_realtime/static/src/chat/composer_patch.js",
            "llm_fal_ai_realtime/static/src/chat/composer_patch.xml",
            "llm_fal_ai_realtime/static/src/chat/thread_open_patch.js",
            "llm_fal_ai_realtime/static/src/chat/attachment_upload_patch.js",
            "llm_fal_ai_realtime/static/src/settings/*",
            "llm_fal_ai_realtime/static/src/realtime_marker/*",
            "llm_fal_ai_realtime/static/src/thread_header/*",
        ],
        # Loaded by the chat's LazyComponent the first time a realtime thread shows its canvas: no other
        # page carries the browser client, msgpack or the canvas.
        "llm_fal_ai_realtime.live_canvas": [
            # The one browser client, copied from the project's static/ by scripts/sync-odoo-client.
            "llm_fal_ai_realtime/static/src/fal_realtime/**/*.js",
            "llm_fal_ai_realtime/static/src/live_canvas/**/*",
            "llm_fal_ai_realtime/static/src/chat/chat_live_canvas.js",
        ],
    },
    "post_init_hook": "post_init_hook",
    "installable": True,
    "application": False,
}
