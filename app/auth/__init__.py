"""Sign-in, server-side sessions, in-app roles and sign-in throttling (issue 6)."""
