"""Governance of what the loop learns and serves: who labelled what
(`caller`), whose labels are set aside (`quarantine`), how many labels one
caller may send (`limits`), the trusted rows a challenger is checked against
(`trusted_set`), and which behaviour changes wait for a person
(`change_control`, `approvals`)."""
