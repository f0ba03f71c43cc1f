# Shared by the install-*.sh scripts that take a tool from Debian's packages: installs the
# given packages with apt-get, as root or through sudo, with apt's output on stderr so that
# the calling script's stdout stays the tool's path alone. Sourced, not run.

# apt_install SCRIPT PACKAGE... — installs PACKAGE..., naming SCRIPT in any error.
apt_install() {
  local script=$1
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$script: apt-get is unavailable; install $* by hand (see the script's header)." >&2
    return 1
  fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "$script: installing $* needs root (or sudo)." >&2
      return 1
    fi
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; only then is the update worth its time.
  # A failing postinst is not fatal here: the caller checks that its binary is usable.
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >&2; then
    "${sudo[@]}" apt-get update -q >&2 || true
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >&2 || true
  fi
}

# no_service_starts — keeps a package's postinst from starting its service while it installs:
# invoke-rc.d asks /usr/sbin/policy-rc.d, and exit status 101 means "action forbidden". An
# existing policy (a container image often ships one) is left alone; ours is removed on exit.
no_service_starts() {
  local policy=/usr/sbin/policy-rc.d
  [ -e "$policy" ] && return 0
  local sudo=()
  [ "$(id -u)" != 0 ] && sudo=(sudo)
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  # shellcheck disable=SC2064 # expand now: the array is local
  trap "${sudo[*]} rm -f $policy" EXIT
}
