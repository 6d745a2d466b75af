"""The admin's pages in Debian's chromium against the real web app: the admin signs in and lands
on 账号管理, creates an operator with the keyboard and hands over the temporary password once;
the operator must set their own password before the console opens; the admin ends a lead's
session and the lead's open wallboard goes to the login page by itself; the audit log shows it
all and exports it. Screenshots go to var/screenshots when HOTLINE_LEAD_SCREENSHOTS is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hotline.settings import Settings
from launch.compose import web_app
from tests.agent_ui.test_dept_browser import signed_in
from tests.support.browser import chromium, free_port, require_chromium, screenshot, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, services=[]))
    with serving(app, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def test_an_admin_creates_an_operator_who_must_choose_a_password(browser, served: str) -> None:
    admin, errors = signed_in(browser, served, "admin", "demoadmin", "/admin")
    admin.wait_for_selector("#accounts tbody tr[data-user=lead]")
    assert "演示账号" in admin.inner_text("#accounts tbody tr[data-user=lead]")
    admin.keyboard.press("n")
    form = admin.locator("#edit-form")
    form.locator("input[name=username]").fill("op3001")
    form.locator("input[name=display_name]").fill("孙丽")
    form.locator("input[name=job_number]").fill("3001")
    form.locator("input[name=job_number]").press("Enter")
    admin.wait_for_selector("#secret[open]")
    temporary = admin.inner_text("#secret-value").strip()
    assert len(temporary) >= 10
    screenshot(admin, "admin-temporary-password")
    admin.keyboard.press("Enter")  # 我已交给本人
    row = admin.locator("#accounts tbody tr[data-user=op3001]")
    row.wait_for()
    assert "待改密码" in row.inner_text() and "话务员" in row.inner_text()

    newcomer = browser.new_context(locale="zh-CN").new_page()
    newcomer.goto(f"{served}/login")
    newcomer.fill("input[name=username]", "op3001")
    newcomer.fill("input[name=password]", temporary)
    newcomer.press("input[name=password]", "Enter")
    newcomer.wait_for_url(f"{served}/account/password")
    assert "临时密码" in newcomer.inner_text("main")
    newcomer.goto(f"{served}/console")  # nothing else opens before the password is changed
    newcomer.wait_for_url(f"{served}/account/password")
    newcomer.fill("input[name=old]", temporary)
    newcomer.fill("input[name=new]", "Sun-li-own-2026")
    newcomer.fill("input[name=again]", "Sun-li-own-2026")
    newcomer.press("input[name=again]", "Enter")
    newcomer.wait_for_url(f"{served}/console", timeout=10_000)
    admin.reload()
    admin.wait_for_selector("#accounts tbody tr[data-user=op3001]")
    assert "待改密码" not in admin.inner_text("#accounts tbody tr[data-user=op3001]")
    assert errors == []


def test_ending_a_leads_session_sends_the_open_wallboard_to_login(browser, served: str) -> None:
    lead, _ = signed_in(browser, served, "lead", "demolead", "/lead")
    lead.wait_for_selector("#offline", state="hidden", timeout=10_000)  # the live link is up
    admin, errors = signed_in(browser, served, "admin", "demoadmin", "/admin")
    admin.on("dialog", lambda d: d.accept())
    button = admin.locator("#accounts tbody tr[data-user=lead] button[data-do=logout]")
    button.wait_for()
    button.click()
    admin.wait_for_selector("#notice:has-text('会话已结束')")
    lead.wait_for_url(f"{served}/login?next=%2Flead", timeout=10_000)

    admin.locator("#accounts tbody tr[data-user=op1025] button[data-do=disable]").click()
    admin.wait_for_selector("#notice:has-text('已停用 op1025')")
    admin.check("#f-disabled")
    assert "已停用" in admin.inner_text("#accounts tbody tr[data-user=op1025]")

    admin.click("nav a:has-text('审计日志')")
    admin.wait_for_url(f"{served}/admin/audit")
    admin.wait_for_selector("#events tbody tr")
    text = admin.inner_text("#events")
    for what in ("新建账号", "强制下线", "停用账号", "登录成功", "修改密码"):
        assert what in text, what
    admin.select_option("select[name=action]", "session_revoke")
    admin.click("#filter button[type=submit]")
    admin.wait_for_function("document.querySelectorAll('#events tbody tr').length === 1")
    with admin.expect_download() as got:
        admin.click("button[data-export=xlsx]")
    assert got.value.suggested_filename.endswith(".xlsx")
    screenshot(admin, "admin-audit")
    assert errors == []
