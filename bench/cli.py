"""dnnbench command line (placeholder until the runner lands)."""

import sys


def main(argv=None) -> int:
    import lightning_modules

    names = lightning_modules.names()
    if not names:
        print("dnnbench: no models registered yet; nothing to run.")
        return 0
    print("dnnbench: registered models:", ", ".join(names), "(the runner has not landed yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
