"""`python -m services.console` (or `smm-console`): run the console."""

from services.console.app import build_app
from shared.run import run_service


def main() -> None:
    run_service("console", build_app)


if __name__ == "__main__":
    main()
