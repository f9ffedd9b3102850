"""The audit ledger and the one audited path every AWS change goes through."""
