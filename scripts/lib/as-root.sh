# Sourced by the scripts that need root (apt-get, loop devices, debootstrap, QEMU's disks): as
# root it does nothing; otherwise the script starts again through sudo, keeping the variables
# that steer it (AB_*, XDG_CACHE_HOME), or, where sudo is missing, stops and says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    keep=$(compgen -e | grep -E '^(AB_[A-Z0-9_]+|XDG_CACHE_HOME)$' | paste -sd, -)
    exec sudo ${keep:+--preserve-env="$keep"} -- "$0" "$@"
  fi
  echo "$(basename "$0"): needs root (apt-get, loop devices, debootstrap) and sudo is not installed; run it as root" >&2
  exit 1
fi
