# opsctl as a container image for the Kubernetes CronJobs that
# `opsctl schedule render --target kubernetes` makes:
#   docker build -t registry.example/opsctl:0.1.0 .
# then set [schedule] image = "registry.example/opsctl:0.1.0" and render again.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The manifests run as uid 10001 (runAsNonRoot): the same user here.
RUN groupadd --system --gid 10001 opsctl \
    && useradd --system --uid 10001 --gid opsctl --home-dir /home/opsctl --create-home opsctl

WORKDIR /src
COPY pyproject.toml README.md ./
COPY opsctl ./opsctl
RUN pip install . && rm -rf /src

USER 10001:10001
WORKDIR /home/opsctl
ENTRYPOINT ["opsctl"]
CMD ["--help"]
