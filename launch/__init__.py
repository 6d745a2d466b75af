"""The roof: how hotline is started. ``launch.cli`` is the ``hotline`` command, ``launch.up``
runs everything in the foreground, and ``launch.compose`` is the one composition root every
entry point builds its parts with. Nothing below imports this package."""
