#!/usr/bin/env bash
# Installs every Debian package the test suites need (unit, integration and system tiers), on
# Debian 12 or later. Idempotent: apt-get skips what is already installed. Needs root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps.sh: must run as root (it runs apt-get install); try: sudo $0" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-test-deps.sh: apt-get not found; this script installs Debian packages (Debian 12 or later)" >&2
  exit 1
fi

# curl: the real HTTP client of the tests; python3/make/g++: better-sqlite3 and the pktinfo
# socket addon build from source; iproute2: network namespaces of the system tests; the DHCP
# clients, dnsmasq and the relay are the real peers of the DHCP system tests; atftp and tftp-hpa
# are the real TFTP clients, and ipxe holds the iPXE binaries TFTP and /ipxe-bin serve. The VM
# tests boot QEMU guests (qemu-system-x86 with its iPXE ROMs in ipxe-qemu, OVMF for UEFI) into
# Debian's kernel and an initramfs built from busybox-static with cpio and kmod; radvd is the
# test network's IPv6 router. The registry tests run Debian's docker-registry as the upstream
# (htpasswd from apache2-utils, a token server signing with a certificate from openssl) and
# skopeo as the client. The precache test boots the CoreOS-live stand-in (test/vm/live-standin),
# whose initramfs carries gdisk's sgdisk, xfsprogs' mkfs.xfs, jq and curl; the test reads the disk
# back with sgdisk, losetup and the kernel's XFS. systemd: systemd-analyze and systemd-sysusers
# check the shipped unit (no systemd running needed); util-linux's setpriv drops capabilities.
# iptables: a DHCP system test makes the server's sends fail (EPERM) in its own namespace.
# redfishtool and python3-sushy (the library Ironic uses): the real Redfish clients that prove the BMC emulator.
# kea-admin: Kea's perfdhcp, the load of the DHCP stop-under-load test (and bench/dhcp-perfdhcp.sh).
# chromium: the real browser of the dashboard tests (driven by playwright-core with executablePath; no browser
# download), with fonts-dejavu-core so its screenshots have a font.
packages=(
  ca-certificates curl python3 make g++ iproute2
  udhcpc isc-dhcp-client dhcpcd-base dnsmasq-base isc-dhcp-relay atftp tftp-hpa ipxe
  qemu-system-x86 ipxe-qemu ovmf linux-image-amd64 busybox-static cpio kmod radvd
  docker-registry skopeo apache2-utils openssl gdisk xfsprogs jq util-linux systemd iptables
  redfishtool python3-sushy
  kea-admin chromium fonts-dejavu-core
)

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"
