"""The admin's rooms: accounts (账号管理), the security audit (审计日志), the telephony
credentials (分机密码) and the import of the previous system's tickets (导入历史工单).

Public surface: ``router`` (``/admin*`` pages and ``/api/admin/*``), for admins only.
"""

from __future__ import annotations

from fastapi import APIRouter

from agent_ui.admin import accounts, audit, imports, sip

router = APIRouter()
router.include_router(accounts.router)
router.include_router(audit.router)
router.include_router(sip.router)
router.include_router(imports.router)

__all__ = ["router"]
