# The runs-cdc daemon against real servers (CLICKHOUSE_URL); chDB is installed but not loaded.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY sql ./sql
COPY clickhouse ./clickhouse
COPY tsconfig.json ./
# glibc's malloc raises its mmap threshold after freeing a large block, then keeps freed insert
# bodies in its heap: a fixed 128 KiB threshold returns them (one huge transaction: +66 instead of
# +116 MiB RSS, bench/run.ts hugeTransactionWithoutEngine --rows=realistic).
ENV MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
USER node
ENTRYPOINT ["node", "bin/runs-cdc.js"]
CMD ["replicate"]
