"""croniter: the module-level EXPRESSIONS dict keeps an entry per expression and hash_id."""
import resource
from datetime import datetime

from croniter import croniter


def next_run(job_name, base):
    # hashed schedules spread jobs over the day: each job name gives its own hash_id
    return croniter("H H(0-5) * * *", base, hash_id=job_name).get_next(datetime)


def main():
    base = datetime(2026, 1, 1)
    for i in range(8000):
        next_run(f"tenant-{i}/nightly-export-of-the-warehouse-tables-" + "x" * 1000 + "", base)
        if i % 2000 == 0:
            print(i, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB", flush=True)
    print("end", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")


main()
