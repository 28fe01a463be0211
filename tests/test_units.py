"""Settings, the JS/Python code mirrors, and the renderer's promises."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from realtime_server.local_app.renderer import RenderRequest, render_jpeg
from realtime_server.protocol import CloseCode, ErrorCode
from realtime_server.settings import Settings

CLIENT = Path(__file__).resolve().parent.parent / "static" / "fal_protocol.js"


def _js_object(name: str) -> dict[str, str]:
    body = re.search(rf"export const {name} = Object\.freeze\(\{{(.*?)\}}\);", CLIENT.read_text(), re.S)
    assert body, f"{name} not found in fal_protocol.js"
    return dict(re.findall(r"(\w+): \"?([\w]+)\"?,", body.group(1)))


def test_js_close_codes_mirror_python() -> None:
    """The browser client's CLOSE_CODES equal protocol.CloseCode."""
    assert _js_object("CLOSE_CODES") == {code.name: str(code.value) for code in CloseCode}


def test_js_error_codes_mirror_python() -> None:
    """The browser client's ERROR_CODES equal protocol.ErrorCode."""
    assert _js_object("ERROR_CODES") == {code.name: code.value for code in ErrorCode}


def test_settings_from_environ_casts_and_names_bad_values() -> None:
    """Every field comes from its variable; a bad value names the variable and the value."""
    settings = Settings.from_environ({
        "RELAY_SHARED_SECRET": "s", "RELAY_ALLOWED_APPS": "a/b, c/d", "RELAY_MAX_FRAME_BYTES": "2048",
        "RELAY_IDLE_TIMEOUT": "1.5", "FAL_KEY": "fal-key-value",
    })
    assert settings.apps == ("a/b", "c/d")
    assert (settings.max_frame_bytes, settings.idle_timeout, settings.dev_mode) == (2048, 1.5, False)
    assert "fal-key-value" not in repr(settings) and "shared_secret" not in repr(settings)
    with pytest.raises(ValueError, match="Config 'RELAY_MAX_FRAME_BYTES' has value 'lots': invalid literal"):
        Settings.from_environ({"RELAY_MAX_FRAME_BYTES": "lots"})
    with pytest.raises(ValueError, match="Config 'RELAY_IDLE_TIMEOUT' has value '-1': must be greater than zero"):
        Settings.from_environ({"RELAY_IDLE_TIMEOUT": "-1"})


def test_upstream_follows_fal_key() -> None:
    """No FAL_KEY: the embedded app and local/preview; FAL_KEY: fal's cloud and fal's realtime apps."""
    local = Settings.from_environ({})
    assert local.needs_local_app and local.dev_mode and local.apps == ("local/preview",)
    cloud = Settings.from_environ({"FAL_KEY": "id:secret", "RELAY_SHARED_SECRET": "s"})
    assert not cloud.needs_local_app
    assert cloud.resolved_upstream_url() == "wss://fal.run"
    assert "fal-ai/fast-lcm-diffusion" in cloud.apps


def _mean(jpeg: bytes) -> list[float]:
    return ImageStat.Stat(Image.open(io.BytesIO(jpeg)).convert("RGB")).mean


def _solid(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_to_image_follows_the_input() -> None:
    """A low strength keeps the input's colours; a red input gives a red picture, a blue one blue."""
    red = _mean(render_jpeg(RenderRequest(prompt="a house", seed=1, strength=0.2, image_bytes=_solid((220, 20, 20)))))
    blue = _mean(render_jpeg(RenderRequest(prompt="a house", seed=1, strength=0.2, image_bytes=_solid((20, 20, 220)))))
    assert red[0] > red[2] + 80
    assert blue[2] > blue[0] + 80


def test_renderer_size_and_steps() -> None:
    """Width and height are honoured; more steps give a sharper (different) picture."""
    wide = Image.open(io.BytesIO(render_jpeg(RenderRequest(prompt="x y z", seed=3, width=640, height=384))))
    assert wide.size == (640, 384)
    soft = render_jpeg(RenderRequest(prompt="x y z", seed=3, num_inference_steps=1))
    sharp = render_jpeg(RenderRequest(prompt="x y z", seed=3, num_inference_steps=8))
    assert soft != sharp


def test_readme_lists_every_setting() -> None:
    """README's configuration table has a row for every environment variable Settings reads."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    first_cells = [line.split("|")[1] for line in readme.splitlines() if line.startswith("| `")]
    names = [f.metadata["env"] for f in dataclasses.fields(Settings) if "env" in f.metadata]
    missing = [name for name in names if not any(f"`{name}`" in cell for cell in first_cells)]
    assert len(names) > 20 and missing == []
