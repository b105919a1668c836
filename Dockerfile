# llm-manager gateway image: a slim Python base, a virtualenv built in a separate stage, run as a non-root user.
#   docker build -t llm-manager .
#   docker run -p 4000:4000 -e OPENAI_API_KEY llm-manager      (no config: providers from the environment)
#   docker run -p 4000:4000 -v $PWD/llm-manager.yaml:/etc/llm-manager.yaml:ro -e LLM_MANAGER_CONFIG=/etc/llm-manager.yaml llm-manager
# deploy/compose.yaml runs it as several replicas behind a load balancer; deploy/kubernetes/ has the manifests.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# The extras a shared deployment needs: Redis for state, PostgreSQL for the store.
RUN python -m venv /opt/llm-manager \
    && /opt/llm-manager/bin/pip install ".[redis,postgres]"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 llm \
    && useradd --system --uid 10001 --gid llm --create-home --home-dir /home/llm --shell /usr/sbin/nologin llm
COPY --from=build /opt/llm-manager /opt/llm-manager
ENV PATH=/opt/llm-manager/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/llm
EXPOSE 4000
# Ready (not merely alive): 503 while draining, or while Redis is away under state.on_unavailable: fail_closed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health/ready', timeout=2)"]
# SIGTERM drains: /health/ready turns 503, in-flight requests finish (gateway.drain_timeout_s), the ledger is flushed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["llm-manager"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4000"]
