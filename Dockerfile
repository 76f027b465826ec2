# One image for the gateway, the compose stack's setup step, the simulators and the demo's edge
# agent (on the boxes the agent runs from its own bundle, see edge-agent/deploy/).
# Node runs the TypeScript sources directly (type stripping), so there is no build stage.
# deploy/test/compose.test.ts checks that every path copied here exists.
FROM node:24-bookworm-slim
WORKDIR /opt/coldtrace
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/
COPY testkit/package.json testkit/
COPY edge-agent/package.json edge-agent/
COPY gateway/package.json gateway/
COPY simulators/package.json simulators/
COPY dashboards/package.json dashboards/
# The console workspace: its prepare script skips the build without dev dependencies (vite).
COPY dashboards/console/package.json dashboards/console/
COPY dashboards/console/scripts dashboards/console/scripts
COPY flows/package.json flows/
COPY deploy/package.json deploy/
COPY docs/package.json docs/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY scripts/require-node.mjs scripts/
COPY protocol protocol
COPY gateway gateway
COPY simulators simulators
COPY edge-agent edge-agent
COPY deploy deploy
# The folders the processes write, owned by the user they run as (named volumes mounted there
# start with this ownership): records and accounts, broker ACL, agent outbox, generated secrets.
RUN mkdir -p /var/lib/coldtrace /var/lib/coldtrace-broker /var/lib/coldtrace-agent /run/coldtrace/secrets \
  && chown node:node /var/lib/coldtrace /var/lib/coldtrace-broker /var/lib/coldtrace-agent /run/coldtrace/secrets \
  && chmod 0700 /run/coldtrace/secrets
USER node
EXPOSE 8080
ENTRYPOINT ["node", "gateway/bin/coldtrace-gateway.mjs"]
CMD ["run", "--config", "/etc/coldtrace/gateway.yaml"]
