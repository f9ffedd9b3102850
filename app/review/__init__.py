"""The access review (issue 14): every role's findings in one view, review records with due
dates, and the way to act on them."""
