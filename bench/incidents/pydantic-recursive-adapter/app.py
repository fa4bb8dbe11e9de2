"""pydantic #8397: TypeAdapter over a self-referencing model leaks in pydantic-core 2.14.5."""
import resource

from pydantic import BaseModel, TypeAdapter


class Bar(BaseModel):
    ...


class Foo(BaseModel):
    children: list["Foo"]
    bar: Bar


def parse_batch(rows):
    return TypeAdapter(list[Foo]).validate_python(rows)


def main():
    rows = [{"children": [], "bar": Bar()}]
    for i in range(3000):
        parse_batch(rows)
        if i % 1000 == 0:
            print(i, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB", flush=True)
    print("end", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")


main()
