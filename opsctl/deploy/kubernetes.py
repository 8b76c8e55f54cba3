"""``[schedule]`` as Kubernetes manifests: a ConfigMap skeleton and one ``batch/v1`` CronJob
per scheduled job, in one YAML stream (``kubectl apply -f``).

``concurrencyPolicy: Forbid`` keeps one run at a time inside the cluster (opsctl's advisory
lock does it across clusters and hosts anyway: a second run exits 75). A run may start up to
``startingDeadlineSeconds`` late (at most the grace, so a late start is never overdue), and
``activeDeadlineSeconds`` on the Job ends a run stuck past its time with SIGTERM, on which
opsctl writes its summary. ``backoffLimit: 0``: a failed run is not retried within the
same schedule slot; the next slot is the retry, as with cron. The configuration comes from
the ConfigMap, secrets from the ``opsctl-secrets`` Secret as ``OPSCTL_<SECTION>__<KEY>``
variables, each optional so a Secret holds only what the deployment uses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from opsctl.deploy import yaml_text
from opsctl.deploy.jobs import JobCommand, Scheduled, scheduled
from opsctl.domain.schedules import CronSchedule
from opsctl.settings import Settings

FILE_NAME = "opsctl.yaml"
CONFIG_MAP = "opsctl-config"
SECRET = "opsctl-secrets"  # noqa: S105 (the name of the Secret, not one)
CONFIG_PATH = "/etc/opsctl/config.toml"
UID = 10001  # the Dockerfile's opsctl user
# Every secret of the configuration, by the variable that sets it.
SECRET_VARIABLES = (
    "OPSCTL_DATABASE__URL",
    "OPSCTL_DATABASE__PASSWORD",
    "OPSCTL_ALERTS__WEBHOOK_URL",
    "OPSCTL_HEARTBEAT__URL",
    "OPSCTL_HEARTBEAT__JOBS",  # a JSON object: job name -> URL
    "OPSCTL_S3__ACCESS_KEY_ID",
    "OPSCTL_S3__SECRET_ACCESS_KEY",
)
LABELS = {"app.kubernetes.io/name": "opsctl", "app.kubernetes.io/component": "jobs"}

HEADER = """\
# opsctl on Kubernetes, made by `opsctl schedule render --target kubernetes` from [schedule].
# Fill the ConfigMap below with your config.toml (no secrets in it) and create the Secret:
#   kubectl create secret generic opsctl-secrets \\
#     --from-literal=OPSCTL_DATABASE__URL=postgresql+psycopg://opsctl@db:5432/app \\
#     --from-literal=OPSCTL_DATABASE__PASSWORD=...
# Use PostgreSQL (the default SQLite file would vanish with each pod) and S3 storage.
"""

SKELETON = """\
# opsctl configuration: see config.example.toml for every key.
# Secrets (database url/password, webhook and heartbeat URLs, S3 keys) come from the
# opsctl-secrets Secret.
[storage]
# backend = "s3"
# bucket = "my-exports"

[schedule]
{schedule}
"""


def render(settings: Settings) -> dict[str, str]:
    documents: list[dict[str, Any]] = [_config_map(settings)]
    documents += [_cron_job(job, settings) for job in scheduled(settings) if job.cron]
    text = HEADER + "".join("---\n" + yaml_text.dump(doc) for doc in documents)
    return {FILE_NAME: text}


def _config_map(settings: Settings) -> dict[str, Any]:
    schedule = "\n".join(f'"{job}" = "{cron}"' for job, cron in settings.schedule.jobs().items())
    schedule += f'\ngrace = "{settings.schedule.grace}"'
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "labels": dict(LABELS)},
        "data": {"config.toml": yaml_text.Literal(SKELETON.format(schedule=schedule))},
    }


def _starting_deadline(schedule: CronSchedule, grace: timedelta) -> int:
    """Late enough to survive a controller hiccup, never later than the grace nor past half
    the interval (the next slot would be as good), and at least the 10 s Kubernetes needs."""
    return max(10, int(min(grace, schedule.shortest_interval() / 2).total_seconds()))


def _kubernetes_cron(cron: str) -> str:
    # Kubernetes reads day-of-week 0-6 only; 7 (Sunday in cron) becomes 0.
    fields = cron.split()
    days = sorted(CronSchedule(cron).fields[4])
    if "7" in fields[4].replace("-", ",").replace("/", ",").split(","):
        fields[4] = ",".join(str(day) for day in days)
    return " ".join(fields)


def _container(command: JobCommand, settings: Settings) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": "OPSCTL_CONFIG", "value": CONFIG_PATH}]
    env += [{"name": name, "valueFrom": {"secretKeyRef": {
        "name": SECRET, "key": name, "optional": True}}} for name in SECRET_VARIABLES]
    return {
        "name": "opsctl",
        "image": settings.schedule.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--output", "json", *command.args],
        "env": env,
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                      "limits": {"memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/opsctl", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108,
    }


def _cron_job(job: Scheduled, settings: Settings) -> dict[str, Any]:
    command = job.command
    labels = {**LABELS, "opsctl/job": command.unit}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": f"opsctl-{command.unit}", "labels": labels},
        "spec": {
            "schedule": _kubernetes_cron(job.cron),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": _starting_deadline(CronSchedule(job.cron),
                                                          settings.schedule.grace_td),
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "activeDeadlineSeconds": int(command.timeout.total_seconds()),
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": {"runAsNonRoot": True, "runAsUser": UID,
                                                "runAsGroup": UID,
                                                "seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [_container(command, settings)],
                            "volumes": [{"name": "config", "configMap": {"name": CONFIG_MAP}},
                                        {"name": "tmp", "emptyDir": {}}],
                        },
                    },
                },
            },
        },
    }
