"""Every side effect of a case: ledger writes now; notifications and hotline callbacks later."""
