# Shared by the benchmarks that measure polyseal commands with /usr/bin/time (publish.sh,
# rollout.sh): sourced after `work` (a scratch directory) is set.

# Runs `command...` once and prints one line: wall time, peak RSS and CPU, after `label`
# padded to `width` characters.
measure_width=${measure_width:-46}
measure() { # label command...
    local label=$1; shift
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >/dev/null
    read -r seconds kib user system < "$work/time"
    printf "%-${measure_width}s %8.2f s wall %8.1f MB peak RSS  (CPU: %.1f s user, %.1f s system)\n" \
        "$label" "$seconds" "$(echo "$kib / 1024" | bc -l)" "$user" "$system"
}

# The machine, for docs/PERFORMANCE.md.
machine() {
    echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m), $(rustc --version)"
}
