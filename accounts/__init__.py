"""Accounts (账号): who may sign in, with which role, job number (工号), department and centre.

A store on the same floor as the ticket store, so every room may ask who someone is without
importing the web room. Public surface: :class:`accounts.store.Accounts` (sign-in, the demo
accounts, lookups by user name and job number), :class:`accounts.models.Account`, and
:func:`accounts.db.migrate`.
"""
