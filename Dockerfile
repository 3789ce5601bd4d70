# One image for the CLI and the team server: `docker run IMAGE validate`, `docker run IMAGE guard prod`, or the
# default command, the server. Build from the repository's root: docker build -t lastgood .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install ".[server,postgres]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LASTGOOD_FILE=/etc/lastgood
COPY --from=build /install /usr/local
# A user of its own, no shell login, no root: the server needs nothing but its port and the database.
RUN groupadd --system --gid 10001 lastgood \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/lastgood --shell /usr/sbin/nologin lastgood \
    && mkdir -p /etc/lastgood
USER 10001:10001
WORKDIR /home/lastgood
EXPOSE 8080
# /healthz answers while the process serves; /readyz (the orchestrator's readiness probe) also checks the ledger.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["lastgood"]
CMD ["server", "--host", "0.0.0.0", "--port", "8080"]
