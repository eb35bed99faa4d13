"""Running cdsrules as a service: start-up safety checks, multi-process serving, audit commands."""
