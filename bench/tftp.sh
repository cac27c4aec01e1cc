#!/usr/bin/env bash
# TFTP throughput and CPU: the same file fetched with the same client (atftp) from edgeboot,
# tftpd-hpa and dnsmasq, each on port 69 of its own loopback address, for every block size and
# window size asked, RUNS times each, in rotation. Prints medians, speed ratios against
# tftpd-hpa, and server CPU time per GiB: each server runs in its own cpuacct cgroup (v1, or
# cpu.stat in v2), which counts tftpd-hpa's forked transfer processes too.
#
#   sudo bench/tftp.sh                                  # 64 MiB, blksize 512 1468, windowsize 1 4 16, 5 runs
#   SIZE_MIB=16 RUNS=3 BLKSIZES=1468 WINDOWS="1 16" sudo -E bench/tftp.sh
#
# Needs root (port 69), atftp, tftpd-hpa (in.tftpd), dnsmasq (dnsmasq-base), and dist/ built.
# Traffic stays on 127.0.0.0/8. tftpd-hpa and dnsmasq do not implement windowsize (RFC 7440):
# they answer without it and send lock-step, which is what the ratio compares against.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-64}
RUNS=${RUNS:-5}
BLKSIZES=${BLKSIZES:-512 1468}
WINDOWS=${WINDOWS:-1 4 16}
SERVERS=${SERVERS:-edgeboot tftpd-hpa dnsmasq}
EB=127.0.0.2 HPA=127.0.0.3 DNSMASQ=127.0.0.1

for tool in atftp in.tftpd; do command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install atftp tftpd-hpa)" >&2; exit 2; }; done
[ -f dist/main.js ] || { echo "build first: npx tsc -p tsconfig.json" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cgroups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  sleep 0.2
  for g in "${cgroups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/root" "$work/var"
head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$work/root/file.bin"
want=$(sha256sum <"$work/root/file.bin" | cut -d' ' -f1)

declare -A addr pid
if [[ " $SERVERS " == *" edgeboot "* ]]; then
  EDGEBOOT_DHCP_MODE=off EDGEBOOT_LOG_LEVEL=warn node dist/main.js serve \
    --set "tftp.listen=$EB:69" --set "tftp.roots=$work/root" --set "tftp.maxWindowSize=64" \
    --set http.listen=127.0.0.2:0 --set "server.dataDir=$work/var" >"$work/edgeboot.log" 2>&1 &
  pid[edgeboot]=$!; addr[edgeboot]=$EB; pids+=("$!")
fi
if [[ " $SERVERS " == *" tftpd-hpa "* ]]; then
  in.tftpd --listen --foreground --secure --address "$HPA:69" "$work/root" &
  pid[tftpd-hpa]=$!; addr[tftpd-hpa]=$HPA; pids+=("$!")
fi
if [[ " $SERVERS " == *" dnsmasq "* ]] && command -v dnsmasq >/dev/null; then
  dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$work/root" \
    --interface=lo --bind-interfaces --pid-file="$work/dnsmasq.pid" --log-facility=- 2>"$work/dnsmasq.log" &
  pid[dnsmasq]=$!; addr[dnsmasq]=$DNSMASQ; pids+=("$!")
fi
sleep 1.5
for s in "${!pid[@]}"; do kill -0 "${pid[$s]}" 2>/dev/null || { echo "$s did not start" >&2; cat "$work/$s.log" 2>/dev/null >&2; exit 1; }; done

if [ -d /sys/fs/cgroup/cpuacct ]; then cgbase=/sys/fs/cgroup/cpuacct; else cgbase=/sys/fs/cgroup; fi
declare -A cg
for s in "${!pid[@]}"; do
  cg[$s]="$cgbase/ebbench-$$-$s"
  mkdir "${cg[$s]}"
  cgroups+=("${cg[$s]}")
  echo "${pid[$s]}" >"${cg[$s]}/cgroup.procs"
done
# CPU seconds used by everything in the server's cgroup so far.
cpu_seconds() {
  if [ -f "$1/cpuacct.usage" ]; then echo "$(cat "$1/cpuacct.usage") / 1000000000" | bc -l
  else echo "$(awk '/^usage_usec/ {print $2}' "$1/cpu.stat") / 1000000" | bc -l; fi
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

printf '%-8s %-6s %-10s %9s %9s %10s %8s\n' blksize window server median_s MiB_s cpu_s/GiB runs_ok
declare -A med cpu
for bs in $BLKSIZES; do
  for ws in $WINDOWS; do
    for s in $SERVERS; do [ -n "${pid[$s]:-}" ] && : >"$work/t-$s" && : >"$work/c-$s"; done
    for ((r = 1; r <= RUNS; r++)); do
      for s in $SERVERS; do
        [ -n "${pid[$s]:-}" ] || continue
        opts=(--option "blksize $bs")
        [ "$ws" -gt 1 ] && opts+=(--option "windowsize $ws")
        rm -f "$work/out"
        c0=$(cpu_seconds "${cg[$s]}")
        t0=$(date +%s.%N)
        timeout 300 atftp -g -r file.bin -l "$work/out" "${opts[@]}" "${addr[$s]}" 69 >/dev/null 2>&1 || true
        t1=$(date +%s.%N)
        sleep 0.2 # tftpd-hpa's transfer process may still be exiting
        c1=$(cpu_seconds "${cg[$s]}")
        got=$(sha256sum <"$work/out" 2>/dev/null | cut -d' ' -f1 || true)
        if [ "$got" = "$want" ]; then
          echo "$t1 - $t0" | bc -l >>"$work/t-$s"
          echo "$c1 - $c0" | bc -l >>"$work/c-$s"
        else
          echo "  $s blksize $bs window $ws run $r: wrong or missing file" >&2
        fi
      done
    done
    for s in $SERVERS; do
      [ -n "${pid[$s]:-}" ] || continue
      n=$(wc -l <"$work/t-$s")
      [ "$n" -gt 0 ] || { printf '%-8s %-6s %-10s %9s\n' "$bs" "$ws" "$s" failed; continue; }
      m=$(median <"$work/t-$s")
      c=$(median <"$work/c-$s")
      med[$s]=$m
      cpu[$s]=$(echo "$c * 1024 / $SIZE_MIB" | bc -l)
      printf '%-8s %-6s %-10s %9.3f %9.1f %10.2f %5d/%d\n' "$bs" "$ws" "$s" "$m" "$(echo "$SIZE_MIB / $m" | bc -l)" "${cpu[$s]}" "$n" "$RUNS"
    done
    if [ -n "${med[edgeboot]:-}" ] && [ -n "${med[tftpd-hpa]:-}" ]; then
      printf '%-8s %-6s   edgeboot speed %.2fx tftpd-hpa, CPU per byte %.2fx' "$bs" "$ws" \
        "$(echo "${med[tftpd-hpa]} / ${med[edgeboot]}" | bc -l)" "$(echo "${cpu[edgeboot]} / ${cpu[tftpd-hpa]}" | bc -l)"
      [ -n "${med[dnsmasq]:-}" ] && printf ', speed %.2fx dnsmasq' "$(echo "${med[dnsmasq]} / ${med[edgeboot]}" | bc -l)"
      printf '\n'
    fi
    unset med cpu; declare -A med cpu
  done
done
