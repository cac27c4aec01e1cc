# syntax=docker/dockerfile:1
# Build: compile TypeScript and the native SQLite binding with the full toolchain.
FROM node:24-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json binding.gyp ./
COPY native ./native
COPY src ./src
# npm ci builds the native addons (pktinfo socket, TFTP pump; node-gyp) and compiles TypeScript (prepare).
RUN npm ci && npm prune --omit=dev

# Run: a slim Debian with Node 24 (the current LTS) and Debian's iPXE binaries for TFTP.
FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/edgeboot
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/Release/udp_pktinfo.node /src/build/Release/tftp_pump.node /src/build/Release/http_sendfile.node ./build/Release/
# The precache job the live environment runs, shipped in its Ignition.
COPY src/precache/job.sh ./src/precache/job.sh
COPY package.json ./
COPY profiles ./profiles
COPY web ./web
ENV EDGEBOOT_SERVER_DATA_DIR=/var/lib/edgeboot \
    EDGEBOOT_STORE_URL=sqlite:/var/lib/edgeboot/edgeboot.db \
    EDGEBOOT_CACHE_DIR=/var/lib/edgeboot/cache
VOLUME /var/lib/edgeboot
EXPOSE 8080/tcp 69/udp 67/udp 4011/udp
# SIGTERM stops it gracefully; run it with --restart=unless-stopped --stop-timeout 30 (README
# "Docker"): a crash costs no boot once it is back.
# --max-semi-space-size=8 --heap-growing-percent=100: docs/service.md "Memory".
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=100", "/opt/edgeboot/dist/main.js"]
CMD ["serve"]
