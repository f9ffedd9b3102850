"""Roles: the inventory (list) and the role detail page."""
