"""Stand-in of DreamTalk's ``core/networks`` package."""
