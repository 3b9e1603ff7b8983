# The submission image: the MDX 2021 grader's entrypoint (`run.sh` -> `python predict.py`) with the kit, its pinned
# dependencies and the weights in models/. Nothing is downloaded when it runs.
#
#   docker build -t demix .                                               # public Python image
#   bash scripts/docker_base_image.sh && \
#     docker build --build-arg BASE_IMAGE=demix-base:bookworm -t demix .  # local Debian image
#
# Versions come from apt.txt and requirements.txt through scripts/setup.sh, the same script
# that sets up a host, so the image and a host cannot drift apart.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# AIcrowd runs submissions as the non-root user aicrowd (uid 1001) in /home/aicrowd.
RUN id -u aicrowd >/dev/null 2>&1 || useradd --create-home --uid 1001 --shell /bin/bash aicrowd
WORKDIR /home/aicrowd

# Dependencies first, so that this layer is rebuilt only when the pins change.
COPY apt.txt requirements.txt ./
COPY scripts/setup.sh scripts/
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*

COPY --chown=aicrowd:aicrowd . .
# A clone without `git lfs pull` has pointer files where the weights should be.
RUN if grep -rlsI '^version https://git-lfs' models/; then \
      echo "models/ holds git-lfs pointer files, not weights: run git lfs pull before docker build" >&2; \
      exit 1; \
    fi

USER aicrowd
ENV PATH=/home/aicrowd/.venv/bin:$PATH
CMD ["bash", "run.sh"]
