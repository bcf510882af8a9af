"""Stand-in for DreamTalk's demo script (only its presence is checked; it does nothing)."""

if __name__ == "__main__":
    raise SystemExit("this is a test stand-in for a DreamTalk checkout, not DreamTalk")
