#!/bin/sh
# cgroups-rw.sh — run by the node's k8s-cgroups unit before containerd and the kubelet (tests/k8s-real/).
# systemd-nspawn mounts the cgroup v1 controllers read-only in the node's cgroup namespace; the
# kubelet and runc create the pods' cgroups in them. Each controller is mounted again, writable,
# in the same namespace: its root stays the node's own cgroup, so nothing outside the node is
# touched. kind's entrypoint does the same for its node containers.
set -eu
mount -o remount,rw /sys/fs/cgroup
for dir in /sys/fs/cgroup/*; do
    name=${dir##*/}
    case "$name" in systemd | unified) continue ;; esac
    if [ -L "$dir" ] || ! mountpoint -q "$dir"; then continue; fi
    umount "$dir"
    mount -t cgroup -o "rw,nosuid,nodev,noexec,$name" cgroup "$dir"
done
