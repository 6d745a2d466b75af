"""Real SIP traffic for demos, tests and load: SIPp callers and auto-answering seat bots."""
