"""The one settings object: environment variables with the HOTLINE_ prefix."""

from __future__ import annotations

from hotline.settings import Settings


def test_lists_and_mappings_come_from_plain_environment_values(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOTLINE_SEATS", "8001, 8002")
    monkeypatch.setenv("HOTLINE_SERVICES", "cti")
    monkeypatch.setenv("HOTLINE_CENTRES", '{"菏泽中心": ["hotline"], "北区": ["north"]}')
    monkeypatch.setenv("HOTLINE_LEAD_BUSY_LIMIT_S", "300")
    s = Settings(var_dir=tmp_path)
    assert s.seats == ["8001", "8002"] and s.services == ["cti"]
    assert s.centres == {"菏泽中心": ["hotline"], "北区": ["north"]} and s.lead_busy_limit_s == 300
    assert s.db_url == f"sqlite:///{tmp_path / 'hotline.db'}"
    monkeypatch.setenv("HOTLINE_SEATS", '["8009"]')  # the JSON form works too
    assert Settings(var_dir=tmp_path).seats == ["8009"]


def test_the_ami_secret_is_generated_once_and_kept_private(tmp_path) -> None:
    s = Settings(var_dir=tmp_path, ami_secret="")
    assert s.resolved_ami_secret() == ""  # nothing invented unless asked to create
    secret = s.resolved_ami_secret(create=True)
    assert len(secret) >= 24 and s.resolved_ami_secret() == secret
    assert (tmp_path / "secrets" / "ami").stat().st_mode & 0o077 == 0
