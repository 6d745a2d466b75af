"""分机密码 in Debian's chromium against the real web app: the admin opens it from the admin nav,
sees the warning about a seat still on its old default password, rotates that line with the
keyboard after confirming, gets the new password once (copied with C), and the warning is gone;
a look at another line's password is asked for explicitly; the audit log shows both.
Screenshots go to var/screenshots when HOTLINE_LEAD_SCREENSHOTS is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hotline.asterisk import secrets
from hotline.settings import Settings
from launch.compose import web_app
from tests.agent_ui.test_dept_browser import signed_in
from tests.support.browser import chromium, free_port, require_chromium, screenshot, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    require_chromium()
    port = free_port()
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, services=[],
                        seats=["8001", "8002"], department_lines=["2001"])
    settings.resolved_ami_secret(create=True)
    secrets.ensure_passwords(settings)  # as `hotline asterisk install` leaves them…
    (secrets.sip_dir(settings) / "8002").write_text("s8002\n")  # …but one seat still on the old default
    with serving(web_app(settings), port):
        yield f"http://127.0.0.1:{port}", settings


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def test_an_admin_rotates_a_weak_seat_password_and_sees_the_new_one_once(browser, served) -> None:
    url, settings = served
    admin, errors = signed_in(browser, url, "admin", "demoadmin", "/admin")
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    confirmations: list[str] = []
    admin.on("dialog", lambda d: (confirmations.append(d.message), d.accept()))

    admin.click("nav a:has-text('分机密码')")
    admin.wait_for_url(f"{url}/admin/sip")
    admin.wait_for_selector("#lines tbody tr[data-line='2001']")
    assert admin.is_visible("#problems")
    assert "坐席 8002 仍在使用旧的默认 SIP 密码" in admin.inner_text("#problems")
    assert "s8002" not in admin.inner_text("main") and settings.seat_password("8001") not in admin.content()
    screenshot(admin, "admin-sip-weak")

    admin.focus("#lines tr[data-line='8001'] button[data-do=rotate]")
    admin.keyboard.press("ArrowDown")  # the same button one row down: 8002's 更换密码
    admin.keyboard.press("Enter")
    admin.wait_for_selector("#secret[open]")
    assert confirmations and "坐席 8002" in confirmations[-1]
    new = admin.inner_text("#secret-value").strip()
    assert new == settings.seat_password("8002") and len(new) == secrets.LENGTH
    assert admin.is_visible("#secret-once")  # 只显示这一次
    assert "下次启动时生效" in admin.inner_text("#secret-note")  # no Asterisk runs for this app
    screenshot(admin, "admin-sip-new-password")
    admin.keyboard.press("c")
    admin.wait_for_selector("#notice:has-text('已复制')")
    assert admin.evaluate("navigator.clipboard.readText()") == new
    admin.keyboard.press("Enter")  # 关闭
    admin.wait_for_selector("#secret", state="hidden")
    assert admin.inner_text("#secret-value") == ""  # the password left the page with the box
    assert admin.evaluate("document.activeElement.closest('tr').dataset.line") == "8002"
    admin.wait_for_selector("#problems", state="hidden")  # nothing weak is left

    admin.click("#lines tr[data-line='2001'] button[data-do=reveal]")
    admin.wait_for_selector("#secret[open]")
    assert admin.inner_text("#secret-value").strip() == settings.seat_password("2001")
    assert not admin.is_visible("#secret-once")
    admin.keyboard.press("Escape")
    admin.wait_for_selector("#secret", state="hidden")

    admin.click("nav a:has-text('审计日志')")
    admin.wait_for_url(f"{url}/admin/audit")
    admin.wait_for_selector("#events tbody tr")
    text = admin.inner_text("#events")
    assert "更换分机密码" in text and "查看分机密码" in text and new not in text
    assert errors == []
