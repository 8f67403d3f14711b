# CPU image by default; for CUDA pass a CUDA-enabled Python base, e.g.
#   docker build --build-arg BASE_IMAGE=<cuda runtime image with python3.11> .
# (the pinned torch==2.13.0 wheel brings its own CUDA libraries on Linux).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG PIP_EXTRA_ARGS=""
ENV PYTHONUNBUFFERED=1 \
    TAILSCOPE_HOME=/data \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app
COPY requirements.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir ${PIP_EXTRA_ARGS} -r requirements.txt
COPY core ./core
COPY app ./app
COPY pages ./pages
COPY assets ./assets
COPY .streamlit ./.streamlit
RUN pip install --no-cache-dir --no-deps -e .
# Run as an unprivileged user that owns only the data volume.
RUN useradd --create-home --uid 10001 tailscope && mkdir -p /data && chown tailscope:tailscope /data
USER tailscope

VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["streamlit", "run", "app/main.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
