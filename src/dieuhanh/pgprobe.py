"""Exit 0 when a PostgreSQL server answers at the URL given (used by `make test-pg`)."""

import sys

import psycopg


def main(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return 0
    except psycopg.OperationalError as e:
        print(f"PostgreSQL: {e}".strip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
