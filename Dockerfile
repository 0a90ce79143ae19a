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
USER node
ENTRYPOINT ["node", "bin/runs-cdc.js"]
CMD ["replicate"]
