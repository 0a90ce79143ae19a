# runs-cdc against a Postgres and a ClickHouse server (CLICKHOUSE_URL): compiled JS, server
# dependencies only (no chDB, no embedded Postgres, no TypeScript), as the non-root `node` user.

# Build stage: the dev tools compile src/ to dist/, then everything but the server's runtime
# dependencies is pruned away.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out chDB (~540 MB) and embedded Postgres, which a server deployment never
# loads; TypeScript's compiler binary is an optional dependency too, so add this platform's alone.
# --ignore-scripts: `prepare` would build before the sources are here.
RUN npm install --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm install --omit=optional --ignore-scripts --no-save --no-audit --no-fund \
      "@typescript/typescript-$(node -p 'process.platform + "-" + process.arch')@$(node -p 'require("./package.json").devDependencies.typescript')"
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --omit=optional --no-audit --no-fund

# Runtime stage: Node's current LTS line, the compiled CLI and its production dependencies.
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    CHDB_PATH=/data/chdb \
    RUNS_CDC_METRICS_PORT=9464 \
    RUNS_CDC_LISTEN_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin/runs-cdc.js ./bin/
COPY clickhouse ./clickhouse
# The one directory runs-cdc writes to (chDB's, should the embedded engine be installed).
RUN mkdir -p /data && chown node:node /data
VOLUME /data
# glibc's malloc raises its mmap threshold after freeing a large block, then keeps freed insert
# bodies in its heap: a fixed 128 KiB threshold returns them (one huge transaction: +66 instead of
# +116 MiB RSS, bench/run.ts hugeTransactionWithoutEngine --rows=realistic).
ENV MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
USER node
EXPOSE 9464
# Ready = /readyz finds no problem (see the README). Node has fetch; the
# slim image has no curl or wget.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.RUNS_CDC_METRICS_PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1's program itself (no shell, no npm): `docker stop`'s SIGTERM reaches the daemon,
# which flushes, confirms and exits 0.
ENTRYPOINT ["node", "bin/runs-cdc.js"]
CMD ["replicate"]
