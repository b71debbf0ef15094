# Shared by scripts/bench and scripts/test: the benchmark's Node packages in bench/node_modules.
# Usage: source scripts/_bench_deps.sh   (after scripts/_venv.sh, from the project directory)
if command -v npm >/dev/null; then
    bench_stamp="bench/node_modules/.installed-$(sha256sum bench/package-lock.json | cut -c1-16)"
    if [ ! -f "$bench_stamp" ]; then
        echo "==> Installing the benchmark's Node packages (npm ci in bench/)"
        npm ci --prefix bench --no-audit --no-fund --loglevel=error
        touch "$bench_stamp"
    fi
else
    echo "!!  npm is missing: the benchmark (and its smoke test) need Node.js 18 or newer." >&2
fi
