"""``playground serve``: the playground in the browser, one process per tab, for a classroom.

``policy`` holds the rules (token, loopback, session cap), ``session`` one tab's process,
``server`` the web server on textual-serve; ``templates/`` the pages it serves. No torch
and no textual here: the server starts fast and each tab's process runs the TUI.
"""
