#!/bin/sh
# build-initramfs.sh OUT_DIR [KVER] — the tiny initramfs the VM tests and bench/qemu-boot.sh boot:
# busybox-static, the virtio NIC and disk modules of kernel KVER (default: the newest with
# modules) and this folder's init. Writes OUT_DIR/initramfs.img and OUT_DIR/vmlinuz (a copy of
# the kernel).
# Needs Debian's linux-image-amd64, busybox-static, kmod and cpio. Takes about a second.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-initramfs.sh OUT_DIR [KVER]}
mkdir -p "$out"; out=$(cd "$out" && pwd)
kver=${2:-}
if [ -z "$kver" ]; then
  for v in $(ls /lib/modules 2>/dev/null | sort -V); do [ -f "/boot/vmlinuz-$v" ] && kver=$v; done
fi
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] || { echo "no kernel with modules: apt-get install linux-image-amd64" >&2; exit 2; }
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || { echo "need a static /bin/busybox: apt-get install busybox-static" >&2; exit 2; }
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/lib/modules" "$root/etc"
ln -s busybox "$root/bin/sh"
cp /bin/busybox "$root/bin/busybox"
cp "$here/init" "$root/init"; cp "$here/udhcpc.script" "$root/udhcpc.script"
chmod 755 "$root/init" "$root/udhcpc.script" "$root/bin/busybox"
: >"$root/modules.list"
# Dependencies first, each once, as modprobe resolves them; built-in modules print no insmod.
modprobe -S "$kver" -a --show-depends virtio_pci virtio_net virtio_blk | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' |
  while read -r m; do
    case "$m" in *.ko) ;; *) echo "module $m is compressed; expected plain .ko" >&2; exit 2 ;; esac
    cp "$m" "$root/lib/modules/"; basename "$m" >>"$root/modules.list"
  done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.img"
cp "/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "$kver"
