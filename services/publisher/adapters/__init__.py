"""One adapter per network: send a post, and find out whether a post already went out."""
