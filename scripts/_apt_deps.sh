# Shared by scripts/test and scripts/restart: install the Debian packages of missing commands.
# Usage: source scripts/_apt_deps.sh; apt_install_missing "what for" command...
# Each command comes in the package of its name (chromium, nginx, openssl). As root, with
# apt-get, they are installed; otherwise this says how, and the caller goes on without them.
apt_install_missing() {
    local purpose="$1" missing=()
    shift
    for command in "$@"; do
        command -v "$command" >/dev/null || [ -x "/usr/sbin/$command" ] || missing+=("$command")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> Installing ${missing[*]} $purpose"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "!!  Missing ${missing[*]}, needed $purpose." >&2
        echo "    Install with: sudo apt-get install ${missing[*]}" >&2
    fi
}
