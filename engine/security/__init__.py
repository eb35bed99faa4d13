"""Who may call us: the EHR's signed JWTs (CDS Hooks "Trusting CDS Clients"), shared by every surface."""
