"""Web plumbing shared by every page: rendering, htmx detection, errors, CSRF."""
