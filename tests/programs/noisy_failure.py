"""A child that fails (exit 3) with TensorFlow's import notices on stderr before its real reason."""
import sys

NOISE = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
         "I0000 00:00:1795681438.041053   11102 port.cc:153] oneDNN custom operations are on. You may see "
         "slightly different numerical results due to floating-point round-off errors."]
REASON = "error: the real reason"

if __name__ == "__main__":
    for line in NOISE:
        print(line, file=sys.stderr)
    print(REASON, file=sys.stderr)
    sys.exit(3)
