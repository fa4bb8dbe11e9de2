"""structlog #807: WRITE_LOCKS keeps every file a PrintLogger/WriteLogger ever wrote to."""
import io
import resource

import structlog


def run_job(job_id):
    # each job's log goes to its own buffer, which is attached to the job's result
    buf = io.StringIO()
    log = structlog.WriteLogger(file=buf)
    for step in range(20):
        log.msg(f"job={job_id} step={step} status=ok detail={'x' * 80}")
    return len(buf.getvalue())


def main():
    for i in range(8000):
        run_job(i)
        if i % 2000 == 0:
            print(i, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB", flush=True)
    print("end", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")


main()
