"""Write the API's OpenAPI schema, or (--check) fail when the committed one differs."""

import json
import os
import sys
from pathlib import Path


def schema_text() -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
    import django

    django.setup()
    from dieuhanh.api import api

    return (
        json.dumps(
            api.get_openapi_schema(path_prefix="/api/v1"), indent=2, ensure_ascii=False, sort_keys=True
        )
        + "\n"
    )


def main(argv: list[str]) -> int:
    check = "--check" in argv
    path = Path(next(a for a in argv if a != "--check"))
    text = schema_text()
    if not check:
        path.write_text(text, encoding="utf-8")
        return 0
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        print(f"{path} differs from the API: run `make openapi` and commit the change.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
