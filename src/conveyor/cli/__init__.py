"""The ``conveyor`` command line: wires server, runner and the admin API into commands.

May import everything; imports ``conveyor.server`` lazily inside commands so ``conveyor runner``
works on an install without the server's dependencies.
"""
