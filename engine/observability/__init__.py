"""Operating the service: Prometheus metrics, structured JSON logs and the health endpoints."""
