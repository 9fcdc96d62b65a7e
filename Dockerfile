# syntax=docker/dockerfile:1
#
# One Dockerfile, one target per app:
#   docker build --target api      -t writebehind-api .
#   docker build --target consumer -t writebehind-consumer .
#   docker build --target cli      -t writebehind-cli .
# The build stage compiles the three apps with `nest build`; each runtime image holds production dependencies
# only (npm ci --omit=dev), the app's dist/ and migrations/, and runs as the unprivileged `node` user.
# Configuration is the environment, as everywhere (docs/configuration.md). See docs/deploy.md.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------- production dependencies
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# No production dependency has an install script (no native modules): --ignore-scripts keeps it that way.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json nest-cli.json ./
COPY libs libs
COPY apps apps
RUN npx nest build api && npx nest build consumer && npx nest build cli

# ---------------------------------------------------------------- common runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    TZ=UTC
WORKDIR /app
# Owned by root and read-only to the app user: the process writes nothing to its image (readOnlyRootFilesystem).
COPY --from=prod-deps /app/node_modules node_modules
# package.json makes dist/*.js ES modules ("type": "module"), and with migrations/ beside it, it is how libs/db
# finds the migrations: it walks up from its module to the first folder holding both.
COPY package.json ./
COPY migrations migrations
# The official image's unprivileged user (uid 1000).
USER node

# ---------------------------------------------------------------- api (HTTP ingestion and reads, port API_PORT)
FROM runtime AS api
COPY --from=build /app/dist/apps/api dist/apps/api
# Heap sized for the ingest workload (docs/benchmarks.md, "Memory"): RSS about 250 MB at saturation for ~0.9x the
# uncapped throughput. A bigger young generation lets a request's garbage die there.
ENV NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=32"
EXPOSE 3000
# /health/live: the process serves; readiness (/health/ready) is for load balancers, not for restarts.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.API_PORT||3000)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# kafkajs 2.2.4 sets negative timeouts on Node 24 (tulios/kafkajs#1751, harmless): silence that warning, as
# scripts/lib/common.sh does. node is PID 1 and handles SIGTERM itself (drain, then exit 0).
CMD ["node", "--disable-warning=TimeoutNegativeWarning", "--enable-source-maps", "dist/apps/api/apps/api/src/main.js"]

# ---------------------------------------------------------------- consumer (Kafka to Postgres; health and metrics on CONSUMER_PORT)
FROM runtime AS consumer
COPY --from=build /app/dist/apps/consumer dist/apps/consumer
EXPOSE 3001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.CONSUMER_PORT||3001)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--disable-warning=TimeoutNegativeWarning", "--enable-source-maps", "dist/apps/consumer/apps/consumer/src/main.js"]

# ---------------------------------------------------------------- cli (operations: migrate, topics, wait-kafka, env)
FROM runtime AS cli
COPY --from=build /app/dist/apps/cli dist/apps/cli
# `wb <command>` anywhere in the container, e.g. `sh -c 'wb topics && wb migrate'` (docker-compose.yml's init).
USER root
RUN printf '#!/bin/sh\nexec node --disable-warning=TimeoutNegativeWarning --enable-source-maps /app/dist/apps/cli/apps/cli/src/main.js "$@"\n' \
      >/usr/local/bin/wb && chmod 755 /usr/local/bin/wb
USER node
# A one-shot command, not a server.
HEALTHCHECK NONE
ENTRYPOINT ["wb"]
CMD ["--help"]
