"""`python -m services.metrics` (or `smm-metrics`): run the metrics service."""

from services.metrics.app import build_app
from shared.run import run_service


def main() -> None:
    run_service("metrics", build_app)


if __name__ == "__main__":
    main()
