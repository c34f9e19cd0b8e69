# One image for both roles (CPU: the wasm backend):
#   docker run swarmtune:latest coordinator --host 0.0.0.0 --port 7070 --workers 2
#   docker run swarmtune:latest worker --connect ws://COORDINATOR_HOST:7070
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# --omit=optional: @tensorflow/tfjs-node-gpu belongs to the CUDA image (Dockerfile.gpu); here workers use wasm.
# --ignore-scripts also skips the AVX-512 CRC-32 addon (this image has no C compiler): the wire checksums with
# @node-rs/crc32 instead, same values, about a third of the speed (see README, "The checksum's speed").
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY coordinator ./coordinator
COPY worker ./worker
COPY shared ./shared
COPY tsconfig.json ./
RUN mkdir -p /app/runs /cache && chown node:node /app/runs /cache
USER node
EXPOSE 7070
ENTRYPOINT ["node", "bin/swarmtune.mjs"]
CMD ["--help"]
