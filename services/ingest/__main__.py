"""`python -m services.ingest` (or `smm-ingest`): run the ingest service."""

from services.ingest.app import build_app
from shared.run import run_service


def main() -> None:
    run_service("ingest", build_app)


if __name__ == "__main__":
    main()
