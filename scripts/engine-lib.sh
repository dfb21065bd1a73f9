# Shared by engine.sh and swarm-bed.sh (sourced): where each engine's binaries are, and a
# bounded stop. Expects $cache and die().
check_version() {
  case $1 in 20.10 | 28.5) ;; *) die "unknown engine '$1' (20.10 or 28.5)" ;; esac
  [ -x "$(dockerd_bin "$1")" ] && [ -x "$(client "$1")" ] && [ -s "$cache/busybox-rootfs.tar" ] ||
    die "engine $1 is not provisioned: run scripts/provision.sh"
}
dockerd_bin() { if [ "$1" = 20.10 ]; then echo /usr/sbin/dockerd; else echo "$sid/usr/sbin/dockerd"; fi; }
client() { if [ "$1" = 20.10 ]; then echo /usr/bin/docker; else echo "$sid/usr/bin/docker"; fi; }
# dockerd looks up containerd, its shim, runc, docker-proxy, docker-init and iptables on PATH.
# For 28.5, sid's own containerd 2.1 and shim come first; runc is bookworm's (sid's needs a newer
# glibc, so provision.sh never unpacks it).
engine_path() {
  if [ "$1" = 20.10 ]; then echo /usr/sbin:/usr/bin:/sbin:/bin
  else echo "$sid/usr/sbin:$sid/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin"; fi
}

# Ends pids with SIGTERM, then SIGKILL after $2 seconds.
terminate() {
  local pids=$1 limit=$2 i p left
  [ -n "${pids// /}" ] || return 0
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < limit * 5; i++)); do
    left=
    for p in $pids; do ! kill -0 "$p" 2>/dev/null || left+="$p "; done
    [ -z "$left" ] && return 0
    pids=$left
    sleep 0.2
  done
  echo "engine.sh: killing $pids after ${limit}s" >&2
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
}

