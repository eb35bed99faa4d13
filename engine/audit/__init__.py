"""Decision audit trail: what the service told whom, with which rules, recorded before replying."""
