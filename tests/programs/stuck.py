"""A child that hangs (ten minutes asleep) in a function its stack dump names."""
import time


def waiting_forever() -> None:
    time.sleep(600)


if __name__ == "__main__":
    waiting_forever()
