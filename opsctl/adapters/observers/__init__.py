"""Run observers: what tells the world outside that a job ran (heartbeats, Prometheus)."""
