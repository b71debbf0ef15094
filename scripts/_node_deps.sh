# Shared by scripts/bench and scripts/test: the Node packages of the load benchmark (bench/) and
# of the accessibility check (tests/a11y/, axe-core). Installed with `npm ci` when their lockfile
# changed. Usage: source scripts/_node_deps.sh   (after scripts/_venv.sh)
if command -v npm >/dev/null; then
    for node_dir in bench tests/a11y; do
        node_stamp="$node_dir/node_modules/.installed-$(sha256sum "$node_dir/package-lock.json" | cut -c1-16)"
        if [ ! -f "$node_stamp" ]; then
            echo "==> Installing Node packages in $node_dir (npm ci)"
            npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
            touch "$node_stamp"
        fi
    done
else
    echo "!!  npm is missing: the benchmark and the accessibility check need Node.js 18 or newer." >&2
fi
