# Dropout Playground: one server process (gunicorn, 1 worker, N threads) in a small image.
# docs/deploy.md has the details; in short:
#
#   CPU (the default: torch from PyTorch's public CPU wheel index, the rest from pip's own):
#     docker build -t dropout-playground .
#     docker run --rm -p 127.0.0.1:8000:8000 dropout-playground
#   A mirror of the CPU wheel index: --build-arg TORCH_INDEX_URL=<its URL>
#   GPU (a CUDA build of torch, pip's own index; run with the NVIDIA container toolkit: --gpus all):
#     docker build --build-arg TORCH_VARIANT=cuda -t dropout-playground:gpu .
#
# Every setting is an environment variable: DP_* (app/settings.py, model_server/config/limits.py),
# SOCKETIO_MESSAGE_QUEUE for scale-out, DP_MAX_CONNECTIONS for gunicorn (deploy/gunicorn.conf.py).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- vendor JS: npm ci from package-lock.json (never committed, never fetched by browsers
# from a CDN). A Debian stage with apt's node, so the build needs no node image.
FROM ${PYTHON_IMAGE} AS vendor
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# The system CA store, which may hold a proxy's CA, is trusted besides node's own.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && test -s node_modules/plotly.js-cartesian-dist-min/plotly-cartesian.min.js \
 && test -s node_modules/socket.io-client/dist/socket.io.esm.min.js

# ---- the image: Python packages in a virtual environment, then the app ----
# (pip runs in this stage: copying a 1 GB venv from another stage only costs build time.)
FROM ${PYTHON_IMAGE}
# cpu | cuda: which torch build the image must hold (checked; see deploy/check_torch.py).
ARG TORCH_VARIANT=cpu
# An extra pip index for torch (a mirror, or PyTorch's CUDA wheel index). Empty: for the CPU
# variant PyTorch's public CPU wheel index (plain `pip install torch` on Linux pulls the
# multi-GB CUDA build), for the CUDA variant pip's own index.
ARG TORCH_INDEX_URL=""
ARG TORCH_CPU_INDEX_URL=https://download.pytorch.org/whl/cpu
# Extra local wheels or a find-links page, if any.
ARG PIP_FIND_LINKS_URL=""
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /tmp/build
COPY requirements.txt deploy/check_torch.py ./
# Resolve torch first (metadata only) and stop before a multi-GB download of the wrong build.
RUN index="${TORCH_INDEX_URL:-$([ "$TORCH_VARIANT" != cpu ] || echo "$TORCH_CPU_INDEX_URL")}" \
 && echo "torch index: ${index:-the default}" \
 && python -m venv /opt/venv \
 && grep -E '^torch==' requirements.txt > torch.txt \
 && pip install --dry-run --quiet --report torch.json \
      ${index:+--extra-index-url "$index"} ${PIP_FIND_LINKS_URL:+--find-links "$PIP_FIND_LINKS_URL"} \
      -r torch.txt \
 && python check_torch.py resolved "$TORCH_VARIANT" torch.json \
 && pip install \
      ${index:+--extra-index-url "$index"} ${PIP_FIND_LINKS_URL:+--find-links "$PIP_FIND_LINKS_URL"} \
      -r requirements.txt \
 && python check_torch.py installed "$TORCH_VARIANT" \
 && rm -rf /tmp/build

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/dropout --shell /usr/sbin/nologin dropout
WORKDIR /app
COPY --from=vendor /src/node_modules node_modules
COPY model_server model_server
COPY app app
COPY static static
COPY templates templates
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
# app/gunicorn_worker.py checks the installed gunicorn against the version pinned here
COPY requirements.txt requirements.txt
# one gunicorn thread per connection: DP_MAX_CONNECTIONS (256) of each, one more answered
# 503 "server busy" at once (app/gunicorn_worker.py, docs/deploy.md)
ENV DP_HOST=0.0.0.0 \
    DP_PORT=8000
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DP_PORT', '8000'), timeout=4)"]
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "app.wsgi:app"]
