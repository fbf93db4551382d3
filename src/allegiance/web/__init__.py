"""Operator pages: server-rendered HTML (Jinja2) with small HTMX-style fragment updates.

The pattern every page follows: a route in ``routes/<area>.py`` declares the :class:`~allegiance.web.auth.Operator`
dependency (login, chosen program), reads through ``allegiance.read()`` with the query modules in
``allegiance.storage`` (no SQL here), and renders a template; when the request carries ``HX-Request``
it renders only the fragment under ``templates/partials``. Errors become HTML pages (``routing.WebRoute``),
never the API's JSON problems. ``mount_web`` in :mod:`allegiance.web.app` adds it all to the API app.
"""
