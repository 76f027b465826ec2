# One image for the gateway and the simulators (the edge agent runs on the boxes, see edge-agent/deploy/).
# Node runs the TypeScript sources directly (type stripping), so there is no build stage.
FROM node:24-bookworm-slim
WORKDIR /opt/coldtrace
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/
COPY testkit/package.json testkit/
COPY edge-agent/package.json edge-agent/
COPY gateway/package.json gateway/
COPY simulators/package.json simulators/
COPY dashboards/package.json dashboards/
COPY flows/package.json flows/
RUN npm ci --omit=dev --no-audit --no-fund
COPY protocol protocol
COPY gateway gateway
COPY simulators simulators
COPY edge-agent edge-agent
USER node
EXPOSE 1883 8080
CMD ["node", "gateway/src/cli/main.ts", "run", "--config", "/etc/coldtrace/gateway.yaml"]
