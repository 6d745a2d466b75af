"""How the console is served: one configuration for ``hotline up``, ``hotline web`` and the benches."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from hotline.settings import Settings
from launch.compose import GC_YOUNG, server_config, web_app


def test_the_served_app_has_no_per_message_compression_and_listens_where_settings_say(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, web_host="127.0.0.1", web_port=8123, services=[])
    config = server_config(settings, log_level="warning")
    assert (config.host, config.port, config.log_level) == ("127.0.0.1", 8123, "warning")
    assert config.ws_per_message_deflate is False and config.proxy_headers is False


def test_a_served_app_freezes_what_start_up_built_so_full_collections_skip_it(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, ami_port=1, agi_port=1, services=[])
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's own, whatever a served app earlier in this worker set
    gc.unfreeze()
    try:
        with TestClient(web_app(settings)):
            assert gc.get_freeze_count() == 0  # tests and tools build many apps: only the server freezes
            assert gc.get_threshold() == (700, 10, 10)
        with TestClient(web_app(settings, freeze_heap=True)) as c:
            assert gc.get_freeze_count() > 10_000
            # and its young generation is collected less often; the older ones keep Python's ratios
            assert gc.get_threshold() == (GC_YOUNG, 10, 10) and GC_YOUNG > 700
            assert c.get("/login").status_code == 200  # and serves as before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
