"""Running the engine beyond one machine: metrics, health endpoints, log context, TLS, payload encryption."""
