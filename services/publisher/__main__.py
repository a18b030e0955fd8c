"""`python -m services.publisher` (or `smm-publisher`): run the publisher service."""

from services.publisher.app import build_app
from shared.run import run_service


def main() -> None:
    run_service("publisher", build_app)


if __name__ == "__main__":
    main()
