# Sourced by the GPU scripts: `step LIMIT COMMAND...` runs COMMAND under `timeout LIMIT`, appends its
# output (tqdm progress lines left out) and exit status to $log, and goes on whatever it returned.
step() {
    local limit=$1; shift
    echo "=== [$(date +%T)] $* (limit ${limit}s)" | tee -a "$log"
    timeout "$limit" "$@" 2>&1 | grep --line-buffered -v "it/s\]" | tee -a "$log"
    echo "=== status ${PIPESTATUS[0]}" | tee -a "$log"
}
