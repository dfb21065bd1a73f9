#!/usr/bin/env bash
# scripts/provision.sh from every starting point it can meet, run as root on Debian bookworm:
#   1. stock sources and no package lists at all       -> adds sid, apt-get update, unpacks 28.5
#   2. the lists already fetched                        -> no apt-get update
#   3. stale lists (docker.io's file gone from the mirror) -> the download fails, one apt-get update, retry
#   4. a run that failed halfway (.download.* junk, an engines/28.5 without dockerd) -> redone, cleaned
#   5. sid's source present, lists fetched before it was added -> apt-get update
#   6. everything in place                              -> "already unpacked", no apt-get update
# The machine's own apt state (/etc/apt, /var/lib/apt/lists) is never touched: every scenario runs
# against a throwaway apt configuration (APT_CONFIG) whose sources, pins, lists and cache are temp
# directories, and a fresh TSLINK_CACHE. Package lists are fetched once (scenario 1) and copied.
# PROVISION_SH runs another copy of the script (to check that this test can fail).
# PROVISION_TEST_TAMPERED=0 leaves out scenario 3b: only the Packages file edited, its InRelease untouched
# (apt-get update does not repair that: it re-fetches an index only when its InRelease changes).
# PROVISION_TEST_KEEP=1 keeps the temp directory (apt configurations, caches, one log per run).
# Output: one ok/not ok line per check, then exactly one line "N passed, N failed"; exit 1 on failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script=${PROVISION_SH:-$(cd "$here/../.." && pwd)/scripts/provision.sh}
passed=0 failed=0
bail() { echo "Bail out! $*"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
[ "$(id -u)" = 0 ] || bail "run as root (provision.sh is a root script)"
[ -x "$script" ] || bail "$script is not executable"

# The machine's apt directories, read before any APT_CONFIG is set.
unset APT_CONFIG
eval "$(apt-config shell MACHINE_PARTS Dir::Etc::parts/d MACHINE_SOURCE_PARTS Dir::Etc::sourceparts/d \
  MACHINE_ETC Dir::Etc/d MACHINE_LISTS Dir::State::lists/d)"
stock=${MACHINE_SOURCE_PARTS}debian.sources # only the stock Debian sources, never a sid one
[ -f "$stock" ] || bail "no $stock to copy"
grep -q '^Suites:.*\bsid\b' "$stock" && bail "$stock already holds sid"
machine_state() { find "$MACHINE_ETC" "$MACHINE_LISTS" -printf '%p %s %T@ %m\n' 2>/dev/null | sort | md5sum; }
machine_before=$(machine_state)

root=$(mktemp -d "${TMPDIR:-/tmp}/tslink-provision-test.XXXXXX") || bail "mktemp failed"
[ "${PROVISION_TEST_KEEP:-0}" = 1 ] || trap 'rm -rf "$root"' EXIT
trap 'exit 130' INT TERM
chmod 755 "$root" # apt's download sandbox (user _apt) must reach the lists' partial/ directory

n=0 runs=0 log=/dev/null rc=
diagnosed=
diag() { # the run's decisions, apt's errors and its last lines, once per run with a failed check
  [ -f "$log" ] && [ "$log" != "$diagnosed" ] || return 0
  diagnosed=$log
  echo "#   run $runs (exit code $rc), $log:"
  grep -E '^(provision: |E: |W: )' "$log" | sed 's/^/#   | /'
  [ "$(tail -n 1 "$log")" = "provision: ok" ] || { echo "#   last lines:"; tail -n 3 "$log" | sed 's/^/#   | /'; }
}
check() { # check DESCRIPTION COMMAND...: one result line
  local desc=$1; shift
  n=$((n + 1))
  if "$@" >/dev/null 2>&1; then
    passed=$((passed + 1)); echo "ok $n - $desc"
  else
    failed=$((failed + 1)); echo "not ok $n - $desc"; diag
  fi
}
has() { grep -Fxq -- "$1" "$log"; }      # the run printed exactly this line
has_re() { grep -Eq -- "$1" "$log"; }    # ... a line matching this
lacks_re() { ! grep -Eq -- "$1" "$log"; } # ... no line matching this
updates() { grep -c '^provision: apt-get update' "$log"; }
one_update() { [ "$(updates)" = 1 ]; }
exited() { [ "$rc" = "$1" ]; }
dockerd_28_5() { [[ $("$1/engines/28.5/usr/sbin/dockerd" --version) == "Docker version 28.5."* ]]; }
no_downloads() { ! compgen -G "$1/engines/.download.*"; }
sid_lists() { compgen -G "$root/$1/lists/*_dists_sid_*"; }

# aptroot NAME [FROM]: a throwaway apt configuration in $root/NAME: the machine's apt.conf.d (its
# proxy and validity settings) plus ours last; stock sources, no pins, no lists. With FROM, the
# sources, pins and lists of that other configuration instead.
aptroot() {
  local d=$root/$1
  mkdir -p "$d"/{parts,src,pref,lists/partial,cache/archives/partial}
  find "$MACHINE_PARTS" -maxdepth 1 -type f -exec cp {} "$d/parts/" \;
  cat >"$d/apt.conf" <<EOF
Dir::Etc::parts "$d/parts/";
Dir::Etc::main "/dev/null";
Dir::Etc::sourcelist "$d/sources.list";
Dir::Etc::sourceparts "$d/src/";
Dir::Etc::preferences "$d/preferences";
Dir::Etc::preferencesparts "$d/pref/";
Dir::State::lists "$d/lists/";
Dir::Cache "$d/cache/";
Dir::Cache::archives "$d/cache/archives/";
// Plain-text lists, so that a scenario can edit them (the machine keeps them compressed).
Acquire::GzipIndexes "false";
// No hooks of the machine's (appstream, packagekit) on the throwaway lists.
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
EOF
  # APT_CONFIG is read before apt.conf.d, whose files would override it: repeat it as the last part.
  cp "$d/apt.conf" "$d/parts/zz-tslink-provision-test"
  if [ $# -gt 1 ]; then
    cp -a "$root/$2/src/." "$d/src/" && cp -a "$root/$2/pref/." "$d/pref/" && cp -a "$root/$2/lists/." "$d/lists/"
  else
    cp "$stock" "$d/src/"
  fi
  # Never run the script unless every apt directory it could write resolves into the temp dir.
  local dirs
  dirs=$(APT_CONFIG=$d/apt.conf apt-config shell a Dir::Etc::sourcelist/f b Dir::Etc::sourceparts/d \
    c Dir::Etc::preferences/f e Dir::Etc::preferencesparts/d f Dir::State::lists/d g Dir::Cache/d \
    h Dir::Cache::archives/d i Acquire::GzipIndexes) || bail "apt-config failed on $d/apt.conf"
  local line
  while read -r line; do
    case $line in
      i=*) [ "$line" = "i='false'" ] || bail "Acquire::GzipIndexes is not false under $d/apt.conf" ;;
      ?="'$d/"*) ;;
      *) bail "$line is outside $d: would touch the machine's apt state" ;;
    esac
  done <<<"$dirs"
}
apt_in() { local d=$1; shift; APT_CONFIG=$root/$d/apt.conf "$@"; } # apt_in NAME COMMAND...
run() { # run NAME CACHE: provision.sh on that apt configuration and cache; sets $log and $rc
  runs=$((runs + 1)); log=$root/run$runs-$1.log
  echo "# run $runs: $1, TSLINK_CACHE=$2"
  APT_CONFIG=$root/$1/apt.conf TSLINK_CACHE=$2 TSLINK_PROVISION_GO=0 timeout 900 "$script" >"$log" 2>&1 </dev/null
  rc=$?
}
common() { # common CACHE: what every successful run leaves
  check "exit code 0" exited 0
  check "ends with 'provision: ok'" eval '[ "$(tail -n 1 "$log")" = "provision: ok" ]'
  check "at most one apt-get update" eval '[ "$(updates)" -le 1 ]'
  check "$1/engines/28.5/usr/sbin/dockerd --version says 28.5" dockerd_28_5 "$1"
  check "no .download.* left in $1/engines" no_downloads "$1"
}
unpacking() { check "unpacks Docker 28.5" has "provision: Docker 28.5 is not unpacked in $1/engines/28.5: fetching it from sid"; }
offer_line="provision: the package lists offer sid's docker.io, containerd and docker-compose"
no_sid_line="provision: apt-get update (the package lists do not offer sid's docker.io)"
arch=$(dpkg --print-architecture)
filename() { awk '/^Package: /{p = ($2 == "docker.io")} p && /^Filename: /{print $2; exit}' "$1"; }
break_filename() { # break_filename LIST: docker.io's Filename points to a file the mirror lacks
  awk '/^Package: /{p = ($2 == "docker.io")} p && /^Filename: /{sub(/\.deb$/, "-gone.deb")} {print}' \
    "$1" >"$1.new" && mv "$1.new" "$1"
}
start=$SECONDS

echo "# 1. stock sources, no package lists at all"
aptroot s1
c1=$root/cache1
run s1 "$c1"
check "adds sid at pin priority 1" has_re '^provision: adding sid \(https?://[^ ]+\) at pin priority 1$'
check "runs apt-get update because the lists lack sid" has "$no_sid_line"
check "a single apt-get update" one_update
unpacking "$c1"
common "$c1"
check "sid's source is in the throwaway sourceparts" grep -qx 'Suites: sid' "$root/s1/src/tslink-sid.sources"
check "sid's pin (priority 1) is in the throwaway preferencesparts" grep -qx 'Pin-Priority: 1' "$root/s1/pref/tslink-sid"
candidate=$(apt_in s1 apt-cache policy docker.io | awk '$1 == "Candidate:" {print $2}')
check "sid's docker.io is no install candidate (candidate: ${candidate:-none}; the system is not upgraded)" \
  eval '[[ -n $candidate && $candidate != 28.* ]]'
# sid's list of packages, named after the mirror: the other scenarios edit it, so it must be text.
sid_pkgs=$(cd "$root/s1/lists" && compgen -G "*_dists_sid_main_binary-${arch}_Packages")
[ "$(head -c 9 "$root/s1/lists/$sid_pkgs" 2>/dev/null)" = "Package: " ] ||
  bail "scenario 1 left no plain-text list of sid's packages (${sid_pkgs:-none}): the other scenarios edit it"

echo "# 2. the lists already fetched (fresh cache)"
aptroot s2 s1
c2=$root/cache2
run s2 "$c2"
check "no apt-get update" lacks_re '^provision: apt-get update'
check "sid's source is not added again" lacks_re '^provision: adding sid'
check "reads the lists as offering sid's packages" has "$offer_line"
unpacking "$c2"
common "$c2"

echo "# 3. stale lists: docker.io's file is gone from the mirror"
aptroot s3 s1
c3=$root/cache3
# Stale lists are an older Packages file together with the older InRelease that vouches for it, so
# edit both: apt-get update re-fetches an index only when the InRelease hash for it changes.
list=$root/s3/lists/$sid_pkgs release=$root/s3/lists/${sid_pkgs%%_main_binary-*}_InRelease
break_filename "$list"
size=$(stat -c %s "$list") md5=$(md5sum <"$list" | cut -d' ' -f1) sha1=$(sha1sum <"$list" | cut -d' ' -f1)
sha256=$(sha256sum <"$list" | cut -d' ' -f1) sha512=$(sha512sum <"$list" | cut -d' ' -f1)
awk -v arch="$arch" -v size="$size" -v md5="$md5" -v sha1="$sha1" -v sha256="$sha256" -v sha512="$sha512" '
  /^[^ ]/ { section = $1 }
  /^ / && NF == 3 && $3 == "main/binary-" arch "/Packages" {
    h = section == "MD5Sum:" ? md5 : section == "SHA1:" ? sha1 : section == "SHA256:" ? sha256 : section == "SHA512:" ? sha512 : $1
    $0 = " " h " " size " " $3
  }
  { print }' "$release" >"$release.new" && mv "$release.new" "$release"
[[ $(filename "$list") == *-gone.deb ]] && grep -q " $sha256 $size main/binary-$arch/Packages\$" "$release" ||
  bail "could not make scenario 3's lists stale"
run s3 "$c3"
check "reads the stale lists as offering sid's packages" has "$offer_line"
check "runs apt-get update because the download failed" has "provision: apt-get update (download failed on the current lists)"
check "a single apt-get update" one_update
check "the update replaced the stale list" eval '[[ $(filename "$list") != *-gone.deb ]]'
unpacking "$c3"
common "$c3"

if [ "${PROVISION_TEST_TAMPERED:-1}" = 1 ]; then
  echo "# 3b. the Packages file edited behind apt's back, its InRelease unchanged"
  aptroot s3b s1
  c3b=$root/cache3b
  break_filename "$root/s3b/lists/$sid_pkgs"
  run s3b "$c3b"
  check "runs apt-get update because the download failed" has "provision: apt-get update (download failed on the current lists)"
  check "the update replaced the edited list" eval '[[ $(filename "$root/s3b/lists/$sid_pkgs") != *-gone.deb ]]'
  common "$c3b"
fi

echo "# 4. re-run after a run that failed halfway"
aptroot s4 s1
c4=$root/cache4
mkdir -p "$c4/engines/.download.Xq3vZ1/root/usr/bin" "$c4/engines/28.5/usr/bin"
head -c 4096 /dev/urandom >"$c4/engines/.download.Xq3vZ1/docker.io_28.5.2_$arch.deb"
echo junk >"$c4/engines/.download.Xq3vZ1/root/usr/bin/docker"
printf '#!/bin/sh\necho half-done\n' >"$c4/engines/28.5/usr/bin/docker" && chmod +x "$c4/engines/28.5/usr/bin/docker"
touch "$c4/engines/28.5/half-done"
run s4 "$c4"
check "no apt-get update" lacks_re '^provision: apt-get update'
unpacking "$c4"
common "$c4"
check "the half-done engines/28.5 was replaced" eval '[ ! -e "$c4/engines/28.5/half-done" ]'

echo "# 5. sid's source present, lists fetched before it was added"
aptroot s5 s1
rm "$root/s5/src/tslink-sid.sources"
# The lists as an update with only the stock sources leaves them (it drops sid's), then the source.
apt_in s5 apt-get -q update >"$root/s5-update.log" 2>&1 || bail "apt-get update with the stock sources failed"
cp "$root/s1/src/tslink-sid.sources" "$root/s5/src/"
sid_lists s5 >/dev/null && bail "scenario 5's lists still hold sid"
c5=$root/cache5
run s5 "$c5"
check "sid's source is not added again" lacks_re '^provision: adding sid'
check "runs apt-get update because the lists lack sid" has "$no_sid_line"
check "a single apt-get update" one_update
check "the lists now hold sid" sid_lists s5
unpacking "$c5"
common "$c5"

echo "# 6. everything in place (scenario 2's lists and cache again)"
lists_state() { find "$root/s2/lists" -printf '%P %s %T@\n' | sort | md5sum; } # names, sizes and mtimes
lists_before=$(lists_state)
run s2 "$c2"
check "Docker 28.5 already unpacked" has "provision: Docker 28.5 already unpacked in $c2/engines/28.5"
check "no apt-get update" lacks_re '^provision: apt-get update'
check "nothing fetched" lacks_re '^provision: (adding sid|Docker 28\.5 is not unpacked)'
check "the lists are untouched" eval '[ "$(lists_state)" = "$lists_before" ]'
common "$c2"

log=/dev/null
check "the machine's own apt state ($MACHINE_ETC, $MACHINE_LISTS) is untouched" eval '[ "$(machine_state)" = "$machine_before" ]'
echo "# $runs runs in $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
