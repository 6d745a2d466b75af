"""Accounts (账号): who may sign in, with which role, job number (工号), department and centre;
their server-side sessions, the sign-in throttle, the password policy and the security audit.

A store on the same floor as the ticket store, so every room may ask who someone is without
importing the web room. Public surface: :class:`accounts.store.Accounts` (sign-in and sign-out,
the demo accounts, lookups), :class:`accounts.admin.AccountAdmin` (create, change, disable,
reset), :class:`accounts.sessions.Sessions` (what a token means now), :class:`accounts.audit.AuditLog`,
:func:`accounts.policy.problems`, :class:`accounts.setup.SetupToken` (production's first admin),
:class:`accounts.models.Account`, and :func:`accounts.db.migrate`.
"""
