# syntax=docker/dockerfile:1
# pulse: `docker build -t pulse .` (or `docker compose up -d --build`).
# test/unit/deployment-files.test.ts checks every path copied here exists (the build-stage ones
# after a real compile) and that .dockerignore does not hide one of them.

# Build stage: every dependency, the validator drift check, the compile.
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# The dashboard page's sources: `npm run build` bundles them into dist/dashboard/.
COPY dashboard ./dashboard
# The validators are generated code committed to src/; the check regenerates them and fails the
# image build on any drift instead of silently shipping stale ones. tsc also copies the JSON
# Schemas that src/http/openapi.ts imports into dist/src/validation/schemas/.
RUN npm run check:validators && npm run build

# Runtime stage: Node 24 on Debian 13 (glibc 2.41), where the newer uWebSockets.js build (20.57,
# glibc >= 2.38) serves; production dependencies only. embedded-postgres is one of them: unused
# when POSTGRES_DSN is set.
FROM node:24-trixie-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# What the process reads at run time: the compiled code (JSON Schemas included) and migrations/,
# found from the project root by src/project-root.ts (two levels above dist/src/).
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# Writable only for embedded mode (no POSTGRES_DSN): EMBEDDED_PG_DATA_DIR defaults to ./.data/postgres.
RUN mkdir .data && chown 1000:1000 .data
# The image's `node` user, numerically: Kubernetes' runAsNonRoot cannot verify a user name.
USER 1000:1000
EXPOSE 8080
# The service drains on SIGTERM within SHUTDOWN_TIMEOUT_MS (10 s by default); give it longer than
# that before SIGKILL (compose: stop_grace_period; Kubernetes: terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# No curl in the slim image: node's own fetch. /readyz, not /healthz: the status a balancer and
# `depends_on: service_healthy` need is "can take traffic" (database up, migrations applied, queue
# below 90%).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/main.js"]
