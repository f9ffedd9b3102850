"""State shared by every RoleDesk process of one installation (issue 16), kept in the database."""
