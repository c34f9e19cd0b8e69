# One image for both roles: `swarmtune coordinator` and `swarmtune worker --connect ws://coordinator:7070`.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY coordinator ./coordinator
COPY worker ./worker
COPY shared ./shared
ENTRYPOINT ["node", "coordinator/swarmtune.mjs"]
