"""`python -m services.moderation` (or `smm-moderation`): run the moderation service."""

from services.moderation.app import build_app
from shared.run import run_service


def main() -> None:
    run_service("moderation", build_app)


if __name__ == "__main__":
    main()
