#!/bin/bash
# edgeboot's precache job: run once by edgeboot-precache.service in the live environment (RHCOS
# live booted from edgeboot's cache). It reports the machine's inventory, fetches its plan,
# makes GPT partition 1, named `data`, at the end of the install disk and formats it XFS (the
# geometry `coreos-installer --save-partlabel data` keeps), downloads every bundle file onto it
# with resume and sha256 verification, reports progress and the result, then reboots or powers
# off as the plan says. A failure is reported with its step and the failing tool's message.
# Needs bash, curl, jq, lsblk, sgdisk, wipefs, partx, blkid, mkfs.xfs, sha256sum and systemctl.
set -uo pipefail
. /etc/edgeboot/precache.env # EDGEBOOT_MACHINE_URL, EDGEBOOT_TOKEN, EDGEBOOT_MAC, EDGEBOOT_AFTER
MNT=${EDGEBOOT_MOUNT:-/var/mnt/edgeboot-data}
STEP=start
AFTER=${EDGEBOOT_AFTER:-reboot}
BODY=''
CODE=000

log() { echo "edgeboot-precache: $STEP: $*"; }

# call METHOD PATH [JSON]: BODY and CODE of edgeboot's answer (CODE 000 when unreachable).
call() {
  local out
  BODY=''
  CODE=000
  out=$(curl -sS --retry 5 --retry-connrefused --retry-delay 2 --connect-timeout 10 --max-time 120 \
    -X "$1" -H "Authorization: Bearer $EDGEBOOT_TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data-binary "$3"} -w '\n%{http_code}' "$EDGEBOOT_MACHINE_URL/$2") || return 1
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
  [ "${CODE:0:1}" = 2 ]
}

# event TYPE MESSAGE [DATA]: a line on the machine's timeline (and a heartbeat).
event() {
  local doc
  doc=$(jq -cn --arg t "$1" --arg m "$2" --argjson d "${3:-null}" '{type: $t, message: $m} + (if $d == null then {} else {data: $d} end)')
  call POST events "$doc" || log "could not post $1 ($CODE): $BODY"
}

finish() {
  # Unmounted, so the partition's log is clean for whoever reads it next.
  umount "$MNT" 2>/dev/null
  sync
  log "then $AFTER"
  systemctl "$AFTER"
  exit "$1"
}

# fail MESSAGE: the result, with the step, then the plan's after action.
fail() {
  log "FAILED: $1"
  call POST result "$(jq -cn --arg s "$STEP" --arg m "$1" '{ok: false, step: $s, message: $m}')" || log "the result was not taken ($CODE): $BODY"
  finish 1
}

# run TOOL ARGS…: fails the step with the tool's last lines when it fails.
run() {
  local out
  if ! out=$("$@" 2>&1); then fail "$1: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ' | sed 's/ *$//')"; fi
}

progress() { # MESSAGE DATA
  event precache-progress "$1" "$2"
}

# partition_node DISK N: /dev/vda 1 -> /dev/vda1, /dev/nvme0n1 1 -> /dev/nvme0n1p1.
partition_node() {
  case "$1" in *[0-9]) echo "$1p$2" ;; *) echo "$1$2" ;; esac
}

STEP=booted
event booted "the precache job started on $(uname -r)"

STEP=inventory
disks=$(lsblk -J -b -d -o NAME,PATH,SIZE,TYPE,RO,RM,MODEL,SERIAL,TRAN | jq -c '[.blockdevices[] | {
  path, name, sizeBytes: (.size | tonumber), type,
  readOnly: ((.ro | tostring) == "true" or (.ro | tostring) == "1"),
  removable: ((.rm | tostring) == "true" or (.rm | tostring) == "1"),
  model: ((.model // "") | gsub("^\\s+|\\s+$"; "")), serial: ((.serial // "") | gsub("^\\s+|\\s+$"; "")), transport: (.tran // "")}]') ||
  fail "lsblk: could not list the disks"
macs=$(cat /sys/class/net/*/address 2>/dev/null | grep -v '^00:00:00:00:00:00$' | sort -u | jq -Rsc 'split("\n") | map(select(length > 0))')
memory=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024))
serial=$(cat /sys/class/dmi/id/product_serial 2>/dev/null | tr -cd '\40-\176' | head -c 64 || true)
inventory=$(jq -cn --argjson d "$disks" --argjson m "$macs" --argjson mem "${memory:-0}" --arg s "$serial" --argjson c "$(nproc)" \
  '{disks: $d, macs: $m, memoryBytes: $mem, cpus: $c} + (if $s == "" then {} else {serial: $s} end)')
call POST inventory "$inventory" || fail "edgeboot did not take the inventory ($CODE): $BODY"
log "$(jq -r '[.[] | "\(.path) \(.sizeBytes)"] | join(", ")' <<<"$disks")"

STEP=plan
while :; do
  if call GET plan; then break; fi
  case "$CODE" in
    503) log "waiting: $(jq -r '.message' <<<"$BODY" 2>/dev/null)"; sleep 10 ;;
    000) log "edgeboot unreachable, asking again"; sleep 10 ;;
    *) fail "edgeboot gave no plan ($CODE): $(jq -r '.message // .' <<<"$BODY" 2>/dev/null || echo "$BODY")" ;;
  esac
done
PLAN=$BODY
# A stable name (/dev/disk/by-path/…) resolved to its node: partition names and sysfs need it.
DISK=$(readlink -f "$(jq -r '.disk' <<<"$PLAN")")
SIZE_GIB=$(jq -r '.partition.sizeGiB' <<<"$PLAN")
LABEL=$(jq -r '.partition.label' <<<"$PLAN")
REQUIRED=$(jq -r '.requiredBytes' <<<"$PLAN")
AFTER=$(jq -r '.after' <<<"$PLAN")
EVERY=$(jq -r '.progressSeconds' <<<"$PLAN")
FILES_TOTAL=$(jq '.files | length' <<<"$PLAN")
BYTES_TOTAL=$(jq '[.files[].size] | add // 0' <<<"$PLAN")
log "$FILES_TOTAL files, $BYTES_TOTAL bytes onto a $SIZE_GIB GiB partition $LABEL of $DISK"

STEP=check-disk
[ -b "$DISK" ] || fail "$DISK is not a block device here"
disk_bytes=$(lsblk -b -dn -o SIZE "$DISK" | tr -d ' ')
[ "$disk_bytes" -ge "$REQUIRED" ] ||
  fail "disk $DISK holds $disk_bytes bytes; the plan needs $REQUIRED ($SIZE_GIB GiB for the data partition and room for the install)"

STEP=partition
# Reused when it is already there: a partition named $LABEL that ends at the disk's last usable
# sector, is big enough and is XFS — from an interrupted run (number 1), or from an install
# (coreos-installer --save-partlabel renumbers it after the OS's partitions) before a redo.
# Its finished files are kept.
table=$(sgdisk -p "$DISK" 2>/dev/null || true)
usable=$(sed -n 's/.*last usable sector is \([0-9]*\).*/\1/p' <<<"$table")
sector=$(cat "/sys/class/block/${DISK##*/}/queue/logical_block_size" 2>/dev/null || echo 512)
want=$((SIZE_GIB * 1073741824 / sector - 2048))
# The partition table's rows: number, first sector, last sector, …, name (last column).
number=$(awk -v label="$LABEL" 'found && $1 ~ /^[0-9]+$/ && $NF == label {print $1 " " $2 " " $3; exit} /^Number/ {found = 1}' <<<"$table")
reuse=no
if [ -n "$number" ]; then
  read -r n first last <<<"$number"
  PART=$(partition_node "$DISK" "$n")
  fstype=$(blkid -p -s TYPE -o value "$PART" 2>/dev/null || true)
  if [ "$last" = "$usable" ] && [ $((last - first + 1)) -ge "$want" ] && [ "$fstype" = xfs ]; then reuse=yes; fi
fi
if [ "$reuse" = yes ]; then
  log "keeping partition $n ($LABEL, XFS) of $DISK"
else
  PART=$(partition_node "$DISK" 1)
  run wipefs -a "$DISK"
  run sgdisk --zap-all "$DISK"
  run sgdisk -n "1:-${SIZE_GIB}GiB:0" -c "1:$LABEL" "$DISK"
  partx -u "$DISK" >/dev/null 2>&1 || true
  udevadm settle
  for _ in $(seq 50); do [ -b "$PART" ] && break; sleep 0.2; done
  [ -b "$PART" ] || fail "$PART did not appear after partitioning $DISK"
  run mkfs.xfs -f "$PART"
  log "made partition 1 ($LABEL, $SIZE_GIB GiB, XFS) at the end of $DISK"
fi

STEP=mount
mkdir -p "$MNT"
run mount -t xfs "$PART" "$MNT"

STEP=download
# The list from a file, not a process substitution: a minimal live image may lack /dev/fd.
LIST=/run/edgeboot-precache-files.tsv
jq -r '.files[] | [.name, (.size | tostring), .sha256, .url] | @tsv' <<<"$PLAN" >"$LIST" || fail "jq: could not read the plan's files"
started=$(date +%s)
files_done=0
bytes_done=0
resumed_bytes=0
status() { # BYTES_NOW -> the progress data
  jq -cn --arg f "$name" --argjson fd "$files_done" --argjson ft "$FILES_TOTAL" --argjson bd "$1" --argjson bt "$BYTES_TOTAL" \
    --argjson r "$resumed" '{step: "download", file: $f, filesDone: $fd, filesTotal: $ft, bytesDone: $bd, bytesTotal: $bt, resumedFrom: $r}'
}
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
while IFS=$'\t' read -r -u 3 name size sha url; do
  dest="$MNT/$name"
  part="$dest.part"
  resumed=0
  if [ -f "$dest" ]; then
    if [ "$(size_of "$dest")" = "$size" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sha" ]; then
      files_done=$((files_done + 1)); bytes_done=$((bytes_done + size))
      log "$name is there and verifies"
      continue
    fi
    log "$name is there but does not verify: fetching it again"
    rm -f "$dest"
  fi
  for attempt in 1 2; do
    have=$(size_of "$part")
    [ "$have" -le "$size" ] || { rm -f "$part"; have=0; }
    resumed=$have
    [ "$have" -gt 0 ] && log "resuming $name at byte $have of $size" && resumed_bytes=$((resumed_bytes + have))
    progress "downloading $name" "$(status "$((bytes_done + have))")"
    : >>"$part" # an empty file downloads to an empty file
    tries=0
    while [ "$(size_of "$part")" -lt "$size" ] && [ $tries -lt 5 ]; do
      tries=$((tries + 1))
      # A transfer that stalls (under 1 byte/s for 2 minutes) is cut, then resumed.
      curl -sS -f --connect-timeout 10 --speed-limit 1 --speed-time 120 -C - -o "$part" "$url" 2>"/run/edgeboot-curl.err" &
      pid=$!
      ticks=0
      while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        ticks=$((ticks + 1))
        # Flushed at each report: after a power cut the partial file resumes from what was reported.
        [ $((ticks % EVERY)) = 0 ] && sync && progress "downloading $name" "$(status "$((bytes_done + $(size_of "$part")))")"
      done
      wait "$pid" || { log "curl: $(tail -n 1 /run/edgeboot-curl.err) (attempt $tries)"; sleep 2; }
    done
    [ "$(size_of "$part")" = "$size" ] || fail "$name: $(size_of "$part") of $size bytes after $tries attempts: $(tail -n 1 /run/edgeboot-curl.err)"
    STEP=verify
    got=$(sha256sum "$part" | cut -d' ' -f1)
    if [ "$got" = "$sha" ]; then
      mv "$part" "$dest"
      break
    fi
    rm -f "$part"
    [ "$attempt" = 1 ] || fail "$name: sha256 $got, expected $sha (downloaded twice)"
    log "$name: sha256 $got, expected $sha: downloading it once more"
    STEP=download
  done
  STEP=download
  files_done=$((files_done + 1)); bytes_done=$((bytes_done + size))
  sync
  log "verified $name"
  progress "verified $name" "$(status "$bytes_done")"
done 3<"$LIST"
[ "$files_done" = "$FILES_TOTAL" ] || fail "$files_done of $FILES_TOTAL files are there after the downloads"

STEP=clean
# What an earlier plan left: partial downloads and archives this bundle does not have.
for f in "$MNT"/*.part "$MNT"/*.tgz; do
  [ -e "$f" ] || continue
  jq -e --arg n "${f##*/}" '.files | any(.name == $n)' <<<"$PLAN" >/dev/null || rm -f "$f"
done
sync

STEP=result
seconds=$(($(date +%s) - started))
call POST result "$(jq -cn --argjson f "$files_done" --argjson b "$bytes_done" --argjson s "$seconds" --argjson r "$resumed_bytes" \
  '{ok: true, message: "every file verified", data: {files: $f, bytes: $b, seconds: $s, resumedBytes: $r}}')" ||
  log "edgeboot did not take the result ($CODE): $BODY"
log "done: $files_done files, $bytes_done bytes in $seconds s"
finish 0
