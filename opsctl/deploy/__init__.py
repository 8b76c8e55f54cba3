"""Deployment files made from ``[schedule]``: crontab lines, systemd units, Kubernetes
CronJobs. Pure text generation, one module per target, plus the atomic writer of ``--out``."""
