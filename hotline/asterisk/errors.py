class AsteriskError(RuntimeError):
    """A provisioning or process problem, with a message that says what to do about it."""
