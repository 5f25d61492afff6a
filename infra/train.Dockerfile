# The training job's image: functions/train/main.ts bundled into one file, with
# the production dependencies including the native TensorFlow backend.
# Build context: the repository root (see .dockerignore).
# Both stages pin the base image by digest, so a rebuild cannot pick up a
# different image under the same tag; Dependabot (.github/dependabot.yml)
# proposes each new digest as a reviewable change.

FROM node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c AS build
# tfjs-node downloads a prebuilt native binding; these let node-gyp compile it if none matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# tfjs-node is an optional dependency, so npm ci succeeds without it; fail the
# build here rather than train ten times slower on the wasm fallback.
RUN node -e "require('@tensorflow/tfjs-node')"
COPY tsconfig.json ./
COPY functions ./functions
# Dependencies stay external: tfjs-node and the tfjs packages it registers with
# must be the same single copies in node_modules. The training worker thread
# (--threads) is its own entry, train-worker.mjs beside train.mjs, where
# functions/lib/training/data-parallel.ts looks for it.
RUN npx esbuild train=functions/train/main.ts train-worker=functions/lib/training/train-worker.ts \
      --bundle --platform=node --target=node22 --format=esm \
      --packages=external --sourcemap --outdir=dist --out-extension:.js=.mjs \
 && npm prune --omit=dev

# glibc (not Alpine): the prebuilt libtensorflow links against it.
FROM node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    DATA_DIR=/tmp/digitnet
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
ENTRYPOINT ["node", "dist/train.mjs"]
