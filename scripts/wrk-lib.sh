# What scripts/http-load.sh and scripts/cluster-bench.sh share: running wrk and taking
# medians. Sourced, not run; needs DURATION (seconds per run) and VALUE (a PUT's value).

# The median by requests/s of "requests/s p99" lines on stdin (the upper one of an even count).
median() {
    sort -n | awk '{ line[NR] = $0 } END { print line[int(NR / 2) + 1] }'
}

# Runs wrk; prints "requests/s p99" and fails on any error it reports.
load() {
    local conns=$1 url=$2 script=${3:-}
    local threads=$((conns < 2 ? 1 : 2))
    local out
    out=$(timeout $((DURATION + 30)) wrk --latency -t "$threads" -c "$conns" -d "${DURATION}s" \
        ${script:+-s "$script"} "$url")
    if grep -Eq 'Socket errors|Non-2xx' <<<"$out"; then
        echo "error: wrk reported errors for $url with $conns connections:" >&2
        echo "$out" >&2
        exit 1
    fi
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$rps $p99"
}

# Writes to $1 a wrk script of PUT /keys with distinct keys, so every PUT is a real write of
# VALUE.
put_script() {
    cat >"$1" <<LUA
local n = 0
request = function()
    n = n + 1
    local body = string.format('{"key":"load:%d:%d","value":"$VALUE"}', math.random(1e9), n)
    return wrk.format("PUT", "/keys", {["Content-Type"] = "application/json"}, body)
end
LUA
}
