"""Peak memory of the current process since it started (exec).

`getrusage(...).ru_maxrss` is not used: Linux carries it over from the parent
across fork and exec, so a child started by a large benchmark process would
report the parent's peak. VmHWM belongs to the new program alone.
"""


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")
